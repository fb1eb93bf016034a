"""Frozen open_clip text tower -> class embeddings of a vocabulary."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from clipdense.registry import MODELS
from ..utils.templates import get_templates
from ..utils.text_cache import TextEmbeddingCache
from .openclip_text_base import OpenCLIPTextBase, parse_vocabulary


@MODELS.register_module()
class OpenCLIPTextEncoder(OpenCLIPTextBase):
    """Class embeddings from a frozen open_clip text tower.

    Each class name is put into every template of a template set, encoded,
    L2-normalised, averaged over templates (and over synonyms of one class,
    ``'sofa, couch'``) and normalised again: CLIP's prompt ensembling
    (Radford et al., 2021), as MaskCLIP and ViLD do. The result is cached
    per (weights, templates, names): a vocabulary that was seen before does
    not run the text tower again, so the per-image cost of an
    open-vocabulary model does not include the text encoder. Changing the
    vocabulary is a call argument (``forward(vocabulary)``).

    Args:
        arch (str): open_clip architecture (its text tower is used).
        pretrained (str, optional): open_clip tag, local checkpoint, OpenAI
            TorchScript archive or ``.safetensors`` (one full-CLIP file can
            serve the image backbone and this encoder).
        vocabulary (Sequence[str], optional): default class names.
        templates (str | Sequence[str]): ``'vild'`` (14, default),
            ``'imagenet'`` (80), ``'maskclip'`` (85), ``'single'`` or a list.
        freeze (bool): keep the tower frozen (default). A trainable tower is
            not cached while gradients are enabled.
        batch_size (int): prompts per text-tower call.
        strict (bool): refuse weights of another architecture.
        quick_gelu (bool, optional): QuickGELU override (``None`` follows
            the weights; OpenAI weights need it).
        cache_dir (str, optional): where tag weights are looked for.
        max_cached (int): vocabularies kept in the cache.
        split_synonyms (bool): True (default, clipdense): a comma inside a
            name separates synonyms whose embeddings are averaged
            (``'sofa, couch'``). False: each name is one string, commas
            included, as OVSeg's authors prompt (``'a photo of a road,
            route.'``).
        init_cfg: accepted for mm configs; the tower is never re-initialised.

    Attributes:
        embed_dim (int): joint-space dimension ``D``.
        logit_scale (nn.Parameter): CLIP's log temperature;
            ``logit_scale_exp`` is its exponential.
    """

    def __init__(self, arch: str = 'ViT-B-16', pretrained: Optional[str] = None, *,
                 vocabulary: Optional[Sequence[str]] = None,
                 templates: Union[str, Sequence[str]] = 'vild',
                 freeze: bool = True,
                 batch_size: int = 256,
                 strict: bool = True,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None,
                 max_cached: int = 8,
                 split_synonyms: bool = True,
                 init_cfg=None):
        super().__init__(arch, pretrained, freeze=freeze, strict=strict,
                         quick_gelu=quick_gelu, cache_dir=cache_dir, init_cfg=init_cfg)
        self.templates = get_templates(templates)
        self.vocabulary = parse_vocabulary(vocabulary)[0] if vocabulary is not None else None
        self.batch_size = int(batch_size)
        self.max_cached = int(max_cached)
        self.split_synonyms = bool(split_synonyms)
        self._cache = TextEmbeddingCache(self.max_cached)

    def _encode_prompts(self, prompts, ctx):
        tokens = self.tokenize(prompts, ctx)
        return torch.cat([self.encode_text(tokens[i:i + self.batch_size])
                          for i in range(0, len(prompts), self.batch_size)], dim=0)

    def forward(self, vocabulary: Optional[Sequence[str]] = None,
                templates: Union[None, str, Sequence[str]] = None) -> torch.Tensor:
        """Class embeddings of a vocabulary.

        Args:
            vocabulary (Sequence[str], optional): class names (comma-separated
                synonyms inside one entry are averaged unless
                ``split_synonyms=False``); default: the one
                given at construction.
            templates (str | Sequence[str], optional): template set for this
                call; default: the one given at construction.

        Returns:
            Tensor: ``(K, D)`` L2-normalised embeddings, one row per class,
            in vocabulary order, on the tower's device.

        Raises:
            ValueError: no/empty vocabulary, repeated names, empty names.
        """
        if vocabulary is None:
            vocabulary = self.vocabulary
        names, synonyms = parse_vocabulary(vocabulary)
        return self.encode_names(names, synonyms, templates)

    def encode_names(self, names: Tuple[str, ...], synonyms: Tuple[Tuple[str, ...], ...],
                     templates: Union[None, str, Sequence[str]] = None) -> torch.Tensor:
        """:meth:`forward` for a vocabulary already checked by
        ``parse_vocabulary`` (its names and synonyms): what
        :class:`~clipdense.models.open_vocab.OpenVocabMixin` calls, so that a
        vocabulary is checked once."""
        if not self.split_synonyms:
            synonyms = tuple((n, ) for n in names)
        tmpl = self.templates if templates is None else get_templates(templates)
        trainable = torch.is_grad_enabled() and any(
            p.requires_grad for p in self.tower_parameters())
        key = (self.weights_key(), tmpl, tuple(names), self.split_synonyms)
        return self._cache.get(key, lambda: self._encode_classes(synonyms, tmpl),
                               trainable=trainable)

    def _encode_classes(self, synonyms, tmpl) -> torch.Tensor:
        self.check_names([s for syn in synonyms for s in syn])
        prompts, index = [], {}
        per_class = []
        for syn in synonyms:
            rows = []
            for s in syn:
                for t in tmpl:
                    p = t.format(s)
                    if p not in index:
                        index[p] = len(prompts)
                        prompts.append(p)
                    rows.append(index[p])
            per_class.append(rows)
        self.check_truncation(prompts, self.context_length)
        feats = F.normalize(self._encode_prompts(prompts, self.context_length), dim=-1)
        emb = torch.stack([feats[rows].mean(dim=0) for rows in per_class])
        return F.normalize(emb, dim=-1)
