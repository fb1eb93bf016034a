"""A timm ViT/DeiT as a dense feature extractor (its last-layer patch
tokens), e.g. ReCo's co-segmentation encoder DeiT-S/16-SIN."""
import os.path as osp
from typing import Optional

import torch
from mmengine.model import BaseModule

from clipdense.registry import MODELS


@MODELS.register_module()
class TimmViTPatchTokens(BaseModule):
    """Patch tokens of a timm vision transformer as a ``(B, C, h, w)`` map.

    The output is the last block's tokens after the final norm, with the
    class (and distillation) tokens removed; the positional table is
    resampled to any input size (timm's ``dynamic_img_size``). ReCo uses
    ``deit_small_distilled_patch16_224`` with the Stylized-ImageNet weights
    of Naseer et al. ("Intriguing Properties of Vision Transformers",
    NeurIPS 2021), a file the user downloads (no tag).

    Args:
        model_name (str): timm architecture.
        pretrained (str, optional): local checkpoint (a state dict, or one
            under ``'model'`` / ``'state_dict'``); classifier heads are
            dropped. Read with ``weights_only=True``.
        freeze (bool): no gradients for the transformer (ReCo's encoder is
            frozen).
        strict (bool): refuse a checkpoint with missing/unexpected keys.
    """

    def __init__(self, model_name: str = 'deit_small_distilled_patch16_224',
                 pretrained: Optional[str] = None, *, freeze: bool = True,
                 strict: bool = True, init_cfg=None):
        super().__init__(init_cfg=None)
        import timm
        self.model = timm.create_model(model_name, pretrained=False, num_classes=0,
                                       dynamic_img_size=True)
        self.pretrained = pretrained
        if pretrained:
            if not osp.isfile(pretrained):
                raise FileNotFoundError(
                    f'{model_name} weights not found: {pretrained} (download the '
                    'checkpoint and give its local path as pretrained=)')
            from clipdense.fileio import safe_torch_load
            sd = safe_torch_load(pretrained, map_location='cpu')
            for key in ('model', 'state_dict'):
                if isinstance(sd, dict) and key in sd:
                    sd = sd[key]
            sd = {(k[len('module.'):] if k.startswith('module.') else k): v
                  for k, v in sd.items()}
            sd = {k: v for k, v in sd.items()
                  if not k.startswith(('head.', 'head_dist.'))}
            pos = self.model.pos_embed
            if 'pos_embed' in sd and sd['pos_embed'].shape != pos.shape:
                raise ValueError(f"pos_embed of {pretrained} is {tuple(sd['pos_embed'].shape)}, "
                                 f'{model_name} has {tuple(pos.shape)}: wrong architecture')
            missing, unexpected = self.model.load_state_dict(sd, strict=False)
            if strict and (missing or unexpected):
                raise ValueError(f'{pretrained} does not match {model_name}: '
                                 f'{len(missing)} missing keys (e.g. {missing[:3]}), '
                                 f'{len(unexpected)} unexpected (e.g. {unexpected[:3]})')
        self.freeze = bool(freeze)
        if self.freeze:
            for p in self.model.parameters():
                p.requires_grad_(False)
        self.patch_size = self.model.patch_embed.patch_size
        self.out_channels = [self.model.num_features]

    def init_weights(self):
        self._is_init = True  # timm initialised the model; weights loaded above

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def forward(self, x: torch.Tensor):
        """``(B, 3, H, W)`` -> ``((B, C, H // p, W // p),)``.

        Rows and columns past the last whole patch are dropped, as a
        strided patch convolution does (the authors' DeiT for ReCo at
        KITTI-STEP's native 375x1242); timm itself refuses such sizes."""
        b, _, h, w = x.shape
        ph, pw = self.patch_size
        if h % ph or w % pw:
            x = x[:, :, :h - h % ph, :w - w % pw]
        tokens = self.model.forward_features(x)
        n_prefix = getattr(self.model, 'num_prefix_tokens', 1)
        tokens = tokens[:, n_prefix:]
        gh, gw = h // ph, w // pw
        return (tokens.transpose(1, 2).reshape(b, -1, gh, gw),)
