"""Normal / anomalous state embeddings of a class for zero-shot anomaly
detection (AnoVL, WinCLIP, plain CLIP prompts)."""
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from clipdense.registry import MODELS
from ..utils.anomaly_prompts import PROMPT_STYLES, TEXTURE_CLASSES, state_prompts
from .openclip_text_base import OpenCLIPTextBase


@MODELS.register_module()
class AnomalyPromptEncoder(OpenCLIPTextBase):
    """Frozen open_clip text tower -> a normal and an anomalous embedding
    per class name.

    The sentences come from :func:`~clipdense.models.utils.anomaly_prompts.
    state_prompts`. How they are averaged matters (AnoVL gotcha, methods.md
    B.3.5): AnoVL averages the **unnormalised** sentence embeddings and then
    normalises (``average='raw'``); WinCLIP and CLIP's prompt ensembling
    normalise each sentence first (``average='normalized'``). The
    per-sentence normalised embeddings are returned as well: AnoVL's
    test-time adapter projects onto them.

    Results are cached per (weights, style, class name): the text tower runs
    once per class, not per image.

    Args:
        arch (str): open_clip architecture (its text tower is used).
        pretrained (str, optional): open_clip tag or weight file.
        style (str): ``'anovl'``, ``'winclip'`` or ``'clip'``.
        average (str, optional): ``'raw'`` or ``'normalized'``; default
            ``'raw'`` for ``'anovl'``, ``'normalized'`` otherwise.
        texture_classes (Sequence[str]): class names that take AnoVL's
            texture-domain templates.
        period (bool, optional): end every sentence with ``'.'``; default
            ``None``: no period for ``'anovl'`` (AnoVL's templates have
            none), a period for the other styles.
        batch_size (int): sentences per text-tower call.
        strict, quick_gelu, cache_dir, init_cfg: as
            :class:`OpenCLIPTextEncoder`.
    """

    def __init__(self, arch: str = 'ViT-B-16-plus-240', pretrained: Optional[str] = None, *,
                 style: str = 'anovl',
                 average: Optional[str] = None,
                 texture_classes: Sequence[str] = TEXTURE_CLASSES,
                 period: Optional[bool] = None,
                 batch_size: int = 256,
                 strict: bool = True,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None,
                 max_cached: int = 64,
                 init_cfg=None):
        super().__init__(arch, pretrained, freeze=True, strict=strict,
                         quick_gelu=quick_gelu, cache_dir=cache_dir, init_cfg=init_cfg)
        if style not in PROMPT_STYLES:
            raise ValueError(f'unknown prompt style {style!r}; choose from {PROMPT_STYLES}')
        if average is None:
            average = 'raw' if style == 'anovl' else 'normalized'
        if average not in ('raw', 'normalized'):
            raise ValueError(f"average must be 'raw' or 'normalized', got {average!r}")
        self.style = style
        self.average = average
        self.texture_classes = tuple(texture_classes)
        self.period = period
        self.batch_size = int(batch_size)
        self.max_cached = int(max_cached)
        self._cache: 'OrderedDict[tuple, Dict[str, torch.Tensor]]' = OrderedDict()

    def prompts(self, cls_name: str) -> Dict[str, tuple]:
        """The normal / anomalous sentences of ``cls_name``."""
        return state_prompts(cls_name, self.style, self.texture_classes, self.period)

    @torch.no_grad()
    def forward(self, cls_name: str) -> Dict[str, torch.Tensor]:
        """State embeddings of one class.

        Args:
            cls_name (str): the class (object / texture) name.

        Returns:
            dict: ``'text'`` ``(2, D)`` L2-normalised [normal, anomalous]
            embeddings; ``'bank'`` ``(Mn + Ma, D)`` the per-sentence
            normalised embeddings (normal first) and ``'num_normal'`` (int
            tensor ``Mn``).
        """
        if not isinstance(cls_name, str):
            raise TypeError(f'cls_name must be a string, got {type(cls_name).__name__}')
        key = (self.weights_key(), cls_name)
        if key in self._cache:
            self._cache.move_to_end(key)
            return {k: v.clone() for k, v in self._cache[key].items()}
        p = self.prompts(cls_name)
        sentences = list(p['normal']) + list(p['anomalous'])
        self.check_names([cls_name])
        self.check_truncation(sentences, self.context_length, 'anomaly prompts')
        tokens = self.tokenize(sentences)
        feats = torch.cat([self.encode_text(tokens[i:i + self.batch_size])
                           for i in range(0, len(sentences), self.batch_size)])
        n = len(p['normal'])
        bank = F.normalize(feats, dim=-1)
        src = feats if self.average == 'raw' else bank
        text = F.normalize(torch.stack([src[:n].mean(0), src[n:].mean(0)]), dim=-1)
        out = {'text': text, 'bank': bank,
               'num_normal': torch.tensor(n, device=bank.device)}
        self._cache[key] = out
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return {k: v.clone() for k, v in out.items()}
