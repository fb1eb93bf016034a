"""Contrastive image-text training of an open_clip model through MMEngine.

CLIP (Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021): a symmetric cross-entropy over the cosine
similarities of a batch of image and caption embeddings, scaled by a learned
temperature. Used to train the synthetic world's tiny CLIP from scratch and,
later, to fine-tune CLIP on mask-noun pairs (OVSeg). The wrapped model keeps
open_clip's key space, so :func:`export_open_clip_state_dict` turns a runner
checkpoint into a file that every ``pretrained=`` argument accepts.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from clipdense.registry import MODELS


def resolve_autocast_dtype(name: Optional[str]) -> Optional[torch.dtype]:
    """``None``/``'float32'`` -> None, a dtype name -> that dtype, ``'auto'``
    -> bfloat16 when this machine runs it natively, else None."""
    if name in (None, 'float32'):
        return None
    if name == 'auto':
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        native = getattr(torch.cpu, '_is_avx512_bf16_supported', lambda: False)
        return torch.bfloat16 if native() else None
    if name not in ('bfloat16', 'float16'):
        raise ValueError(f'autocast_dtype must be None, "auto", "bfloat16" '
                         f'or "float16", got {name!r}')
    return getattr(torch, name)


@MODELS.register_module()
class ContrastiveCLIP(BaseModel):
    """An open_clip model trained with the CLIP contrastive loss.

    Args:
        model_name (str): open_clip architecture name (``open_clip.list_models()``
            or one registered with ``open_clip.add_model_config``).
        pretrained (str, optional): an open_clip checkpoint file to start from.
        freeze_text (bool): keep the text tower fixed (fine-tuning the image
            tower only, as OVSeg does).
        caption_key (str): key of the caption in each data sample.
        image_size (int, optional): train at another input size than the
            architecture's (open_clip ``force_image_size``).
        autocast_dtype (str, optional): ``'bfloat16'`` (or ``'float16'`` on
            CUDA) runs both towers under ``torch.autocast`` on the input's
            device; the loss is computed in fp32. MMEngine's
            ``AmpOptimWrapper`` is CUDA-only, this works on the CPU too (about
            1.5x faster there on CPUs with AVX512-BF16). ``'auto'``: bf16
            where the hardware has it (CUDA with bf16, or a CPU with
            AVX512-BF16), fp32 elsewhere.
        channels_last (bool): keep the image tower and its input in
            channels-last memory format (faster convolutions on the CPU).
        data_preprocessor (dict, optional): normalisation config, usually
            ``ImgDataPreprocessor`` with CLIP's mean/std and ``bgr_to_rgb``.
    """

    def __init__(self,
                 model_name: str,
                 *,
                 pretrained: Optional[str] = None,
                 freeze_text: bool = False,
                 caption_key: str = 'caption',
                 image_size: Optional[int] = None,
                 autocast_dtype: Optional[str] = None,
                 channels_last: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        import open_clip
        from open_clip.loss import ClipLoss

        from clipdense.models.utils.clip_archs import register_clip_archs
        register_clip_archs()
        self.model_name = model_name
        self.clip = open_clip.create_model(
            model_name, pretrained=None, force_image_size=image_size)
        if pretrained is not None:
            from clipdense.fileio import safe_torch_load
            state = safe_torch_load(pretrained, map_location='cpu')
            state = state.get('state_dict', state)
            self.clip.load_state_dict(state)
        self._loaded_pretrained = pretrained is not None
        self.autocast_dtype = resolve_autocast_dtype(autocast_dtype)
        self.channels_last = channels_last
        if channels_last:
            self.clip.visual.to(memory_format=torch.channels_last)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.caption_key = caption_key
        self.loss_fn = ClipLoss()
        if freeze_text:
            for name, p in self.clip.named_parameters():
                if not name.startswith('visual.') and name != 'logit_scale':
                    p.requires_grad_(False)

    def init_weights(self):
        # open_clip initialises its towers in create_model; MMEngine's generic
        # init must not overwrite them (or loaded weights).
        pass

    def _captions(self, data_samples) -> List[str]:
        if isinstance(data_samples, dict):  # pseudo_collate of dicts
            return list(data_samples[self.caption_key])
        out = []
        for ds in data_samples:
            cap = ds[self.caption_key] if isinstance(ds, dict) else getattr(
                ds, self.caption_key)
            out.append(cap)
        return out

    def encode(self, inputs: torch.Tensor, captions: List[str]):
        tokens = self.tokenizer(captions).to(inputs.device)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(inputs.device.type, dtype=self.autocast_dtype,
                            enabled=self.autocast_dtype is not None):
            img = self.clip.encode_image(inputs)
            txt = self.clip.encode_text(tokens)
        img = F.normalize(img.float(), dim=-1)
        txt = F.normalize(txt.float(), dim=-1)
        return img, txt

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Union[Dict[str, torch.Tensor], list]:
        """Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            data_samples (list): B dicts with a caption each.
        Returns:
            ``loss``: dict with ``loss_contrastive`` and the current
            ``logit_scale``; ``predict``: B dicts with L2-normalised
            ``image_embed`` / ``text_embed`` (C,); ``tensor``: the
            (B, B) image-to-text logits.
        """
        img, txt = self.encode(inputs, self._captions(data_samples))
        scale = self.clip.logit_scale.exp()
        if mode == 'loss':
            loss = self.loss_fn(img, txt, scale)
            return dict(loss_contrastive=loss, logit_scale=scale.detach())
        if mode == 'predict':
            return [
                dict(image_embed=i, text_embed=t)
                for i, t in zip(img.detach(), txt.detach())
            ]
        return scale * img @ txt.t()


def export_open_clip_state_dict(checkpoint: Union[str, dict],
                                prefix: str = 'clip.') -> Dict[str,
                                                              torch.Tensor]:
    """The open_clip state dict inside a :class:`ContrastiveCLIP` runner
    checkpoint (``state_dict`` keys ``clip.*`` with the prefix removed)."""
    if isinstance(checkpoint, str):
        from clipdense.fileio import safe_torch_load
        checkpoint = safe_torch_load(checkpoint, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not out:
        raise KeyError(f'no "{prefix}*" keys in the checkpoint; is it a '
                       'ContrastiveCLIP checkpoint?')
    return out
