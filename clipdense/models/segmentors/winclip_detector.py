"""WinCLIP zero-shot anomaly segmentation (window embeddings + harmonic
aggregation), the training-free baseline of AnoVL."""
from typing import Optional, Sequence

import torch

from clipdense.registry import MODELS
from ..utils.anomaly_features import (attnpool_windows, harmonic_aggregation,
                                      make_windows, vit_window_embeddings)
from .anomaly_base import ZeroShotAnomalyDetector


@MODELS.register_module()
class WinCLIPDetector(ZeroShotAnomalyDetector):
    """WinCLIP (Jeong et al., "WinCLIP: Zero-/Few-Shot Anomaly
    Classification and Segmentation", CVPR 2023), zero-shot part.

    * Text: the compositional prompt ensemble
      (``AnomalyPromptEncoder(style='winclip')``: per state, the mean of the
      normalised sentence embeddings).
    * Windows of ``k x k`` patches (``window_sizes``, stride 1): each
      window gets its own image embedding - on a ViT the tower runs on the
      class token plus the window's patch tokens only (the other tokens are
      masked out); on a CLIP ResNet the attention pool attends to the
      window's positions only.
    * Window score ``p_a = softmax(cos / T)`` (``temperature`` 0.07); per
      scale, each patch takes the harmonic mean of the windows covering it;
      the scales and the full image's score (``include_image``) are combined
      by a harmonic mean into the patch map, then upsampled.
    * Image score: ``p_a`` of the full image's embedding.

    Args:
        backbone (dict): ``OpenCLIPResNet`` (``out_indices=(3, )``,
            ``joint_outputs=('global', )``) or open_clip ``OpenCLIPViT``
            (``pyramid=False``, ``joint_outputs=('global', )``).
        text_encoder (dict): an :class:`AnomalyPromptEncoder` config.
        window_sizes (Sequence[int]): window sides in patches (2 = small, 3
            = mid in the paper at 15x15 patches).
        temperature (float): softmax temperature of the scores.
        include_image (bool): include the full-image scale in the map.
        data_preprocessor, class_name, init_cfg: see
            :class:`ZeroShotAnomalyDetector`.
    """

    def __init__(self, backbone: dict, text_encoder: dict, *,
                 window_sizes: Sequence[int] = (2, 3), temperature: float = 0.07,
                 include_image: bool = True, data_preprocessor: Optional[dict] = None,
                 class_name: Optional[str] = None, align_corners: bool = False,
                 train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(backbone, data_preprocessor=data_preprocessor,
                         class_name=class_name, align_corners=align_corners,
                         init_cfg=init_cfg)
        self.text_encoder = MODELS.build(text_encoder)
        self.window_sizes = tuple(int(k) for k in window_sizes)
        if not self.window_sizes or min(self.window_sizes) < 1:
            raise ValueError(f'window_sizes must be positive sizes, got {window_sizes}')
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = float(temperature)
        self.include_image = bool(include_image)
        if 'global' not in tuple(self.backbone.joint_outputs):
            raise ValueError("WinCLIPDetector: the backbone needs joint_outputs=('global', )")
        if self.is_resnet and self.backbone.out_indices[-1] != 3:
            raise ValueError('WinCLIPDetector: a ResNet backbone needs out_indices=(3, ) '
                             '(the window pool reads the last stage)')
        if self.text_encoder.embed_dim != self.backbone.embed_dim:
            raise ValueError(f'text encoder dim {self.text_encoder.embed_dim} != image '
                             f'tower dim {self.backbone.embed_dim}: use the same CLIP arch')

    def _grid(self, img, feats):
        if self.is_resnet:
            return tuple(feats[-1].shape[-2:])
        return self.backbone.grid_size(*img.shape[-2:], self.backbone.patch_size)

    def probs(self, emb: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        e = torch.nn.functional.normalize(emb, dim=-1)
        return (e @ text.t().to(e.dtype) / self.temperature).softmax(-1)[..., 1]

    def score(self, img: torch.Tensor, cls_names: Sequence[str]):
        feats, joint = self.backbone_forward(img)
        gh, gw = self._grid(img, feats)
        for k in self.window_sizes:
            if k > min(gh, gw):
                raise ValueError(f'WinCLIP window {k}x{k} does not fit the {gh}x{gw} patch '
                                 'grid of this input; use a larger input or smaller windows')
        windows = [make_windows(gh, gw, k, device=img.device) for k in self.window_sizes]
        if self.is_resnet:
            c5 = feats[-1]
            pos = self.backbone.pos_table(gh, gw)
            win_emb = [attnpool_windows(self.backbone.visual.attnpool, c5, pos, w)
                       for w in windows]
        else:
            win_emb = vit_window_embeddings(self.backbone, img, windows)
        b = img.shape[0]
        texts = [self.text_encoder(n)['text'] for n in cls_names]
        img_scores = torch.stack([self.probs(joint['global'][i], texts[i]) for i in range(b)])
        scales = []
        for w, emb in zip(windows, win_emb):
            s = torch.stack([self.probs(emb[i], texts[i]) for i in range(b)])  # (B, nw)
            scales.append(harmonic_aggregation(s, w, gh * gw))
        if self.include_image:
            scales.append(img_scores[:, None].expand(-1, gh * gw))
        stack = torch.stack(scales).clamp_min(1e-12)
        amap = len(scales) / (1.0 / stack).sum(0)
        return amap.reshape(b, 1, gh, gw), img_scores
