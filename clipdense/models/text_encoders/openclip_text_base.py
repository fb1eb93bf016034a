"""Shared parts of clipdense's open_clip text encoders: building the text
tower in open_clip's key space, tokenising, and checking vocabularies."""
import re
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from ..utils.clip_loading import create_open_clip, load_tower_weights

_FLAT_PARTS = ('transformer', 'token_embedding', 'positional_embedding',
               'ln_final', 'text_projection')


def parse_vocabulary(vocabulary) -> Tuple[Tuple[str, ...], Tuple[Tuple[str, ...], ...]]:
    """Check a vocabulary and split synonyms.

    Args:
        vocabulary (Sequence[str]): class names; one entry may list
            comma-separated synonyms (``'sofa, couch'``) whose embeddings are
            averaged.

    Returns:
        tuple: the stripped names and, per name, its synonyms.

    Raises:
        ValueError: a bare string, an empty vocabulary, an empty name, or
            names that are equal after lower-casing and whitespace clean-up
            (CLIP's tokenizer lower-cases, so they would be the same class).
    """
    if isinstance(vocabulary, str):
        raise ValueError(
            'the vocabulary must be a list of class names, not one string; '
            "split it first (e.g. 'cat,dog'.split(',')) - inside one entry a "
            "comma separates synonyms ('sofa, couch')")
    if vocabulary is None:
        raise ValueError('no vocabulary given (pass a list of class names)')
    names = tuple(str(n).strip() for n in vocabulary)
    if not names:
        raise ValueError('the vocabulary is empty: give at least one class name')
    synonyms = []
    for i, n in enumerate(names):
        syn = tuple(s.strip() for s in n.split(',') if s.strip())
        if not syn:
            raise ValueError(f'class name #{i} ({n!r}) is empty')
        synonyms.append(syn)
    seen = {}
    dups = []
    for n in names:
        key = re.sub(r'\s+', ' ', n.lower())
        if key in seen:
            dups.append(n if n == seen[key] else f'{seen[key]!r} / {n!r}')
        seen.setdefault(key, n)
    if dups:
        raise ValueError(f'the vocabulary repeats class names: {dups}; each class '
                         'must appear once (merge synonyms as "sofa, couch")')
    return names, tuple(synonyms)


class OpenCLIPTextBase(BaseModule):
    """Builds an open_clip model and keeps only its text tower, with the
    attribute names of open_clip (``transformer``, ``token_embedding``, ...
    for ``CLIP``; ``text`` for ``CustomTextCLIP``) so that the state dict
    stays in open_clip's key space. ``logit_scale`` is kept too.

    Non-ASCII names: open_clip's tokenizer (``ftfy`` fix-up, lower-case,
    byte-level BPE) encodes any Unicode text; scripts CLIP saw little of get
    many byte tokens and weak embeddings, but nothing fails. A name with no
    token left after clean-up raises ``ValueError``.
    """

    def __init__(self, arch: str, pretrained: Optional[str], *,
                 freeze: bool = True, strict: bool = True,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None, init_cfg=None):
        super().__init__(init_cfg=None)
        import open_clip
        model, state_dict, source = create_open_clip(
            arch, pretrained, quick_gelu=quick_gelu, cache_dir=cache_dir)
        self.arch = arch.replace('/', '-')
        self.pretrained = pretrained
        self.load_report = None
        if state_dict is not None:
            self.load_report = load_tower_weights(
                model, state_dict, 'text', strict=strict, source=source.path,
                arch=self.arch)
        self.weights_loaded = state_dict is not None
        self._flat = hasattr(model, 'positional_embedding')
        if self._flat:
            for name in _FLAT_PARTS:
                setattr(self, name, getattr(model, name))
            self.register_buffer('attn_mask', model.attn_mask, persistent=False)
            self.text_pool_type = model.text_pool_type
            self.text_eos_id = getattr(model, 'text_eos_id', None)
        else:
            from open_clip.transformer import TextTransformer
            if not isinstance(model.text, TextTransformer):
                raise NotImplementedError(
                    f"'{self.arch}' has a {type(model.text).__name__} text tower; "
                    'clipdense text encoders support open_clip TextTransformer towers')
            self.text = model.text
        self.logit_scale = model.logit_scale
        self.logit_bias = model.logit_bias
        self.embed_dim = int(open_clip.get_model_config(self.arch)['embed_dim'])
        self.tokenizer = open_clip.get_tokenizer(self.arch)
        self.context_length = int(self.part('positional_embedding').shape[0])
        del model
        self.freeze = bool(freeze)
        if self.freeze:
            for p in self.tower_parameters():
                p.requires_grad_(False)
        self._warned_truncation = set()

    # ------------------------------------------------------------------
    def part(self, name: str):
        """A text-tower part by its ``CLIP`` attribute name."""
        if self._flat:
            return getattr(self, name)
        if name == 'text_pool_type':
            return self.text.pool_type
        if name == 'text_eos_id':
            return self.text.eos_id
        return getattr(self.text, name)

    def tower_parameters(self) -> List[nn.Parameter]:
        """Parameters of the CLIP text tower and ``logit_scale``."""
        if self._flat:
            params = [p for n in ('transformer', 'token_embedding', 'ln_final')
                      for p in getattr(self, n).parameters()]
            params.append(self.positional_embedding)
            proj = self.text_projection
            if isinstance(proj, nn.Parameter):
                params.append(proj)
            elif proj is not None:
                params.extend(proj.parameters())
        else:
            params = list(self.text.parameters())
        params.append(self.logit_scale)
        if self.logit_bias is not None:
            params.append(self.logit_bias)
        return params

    @property
    def logit_scale_exp(self) -> torch.Tensor:
        """``exp(logit_scale)``: CLIP's factor on cosine similarities (100
        for OpenAI weights). ``logit_scale`` itself is the log-space
        parameter, as in open_clip."""
        return self.logit_scale.exp()

    def init_weights(self):
        """No-op for the CLIP tower: it keeps its (loaded) weights."""
        self._is_init = True

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            for m in (self.part('transformer'), self.part('ln_final')):
                m.eval()
        return self

    # ------------------------------------------------------------------
    def check_names(self, names: Sequence[str]):
        """Raise for class names that tokenise to nothing (e.g. only
        characters CLIP's clean-up removes)."""
        from open_clip.tokenizer import SimpleTokenizer
        if not isinstance(self.tokenizer, SimpleTokenizer):
            return
        empty = [n for n in names if not self.tokenizer.encode(n)]
        if empty:
            raise ValueError(f'class names {empty} have no tokens after CLIP text clean-up')

    def check_truncation(self, texts: Sequence[str], context_length: int,
                         what: str = 'prompts'):
        """Warn once (per set of texts) about texts longer than the context;
        raise for texts that tokenise to nothing."""
        from open_clip.tokenizer import SimpleTokenizer
        if not isinstance(self.tokenizer, SimpleTokenizer):
            return
        long = []
        for t in texts:
            n = len(self.tokenizer.encode(t))
            if n == 0:
                raise ValueError(f'{t!r} has no tokens after CLIP text clean-up')
            if n + 2 > context_length:
                long.append(t)
        key = (tuple(long), context_length)
        if long and key not in self._warned_truncation:
            self._warned_truncation.add(key)
            shown = ', '.join(repr(t) for t in long[:5])
            warnings.warn(
                f'{len(long)} {what} exceed the text context of {context_length} tokens '
                f'and are truncated (end token kept): {shown}'
                + (' ...' if len(long) > 5 else ''))

    def tokenize(self, texts: Sequence[str], context_length: Optional[int] = None) -> torch.Tensor:
        """open_clip tokenizer -> ``(N, context_length)`` int64 tokens on the
        tower's device."""
        ctx = context_length or self.context_length
        tokens = self.tokenizer(list(texts), context_length=ctx)
        return tokens.to(self.part('token_embedding').weight.device)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """open_clip's ``encode_text``: tokens ``(N, L)`` -> ``(N, D)``."""
        if not self._flat:
            x = self.text(tokens)
        else:
            cast = self.transformer.get_cast_dtype()
            x = self.token_embedding(tokens).to(cast)
            x = x + self.positional_embedding.to(cast)
            x = self.transformer(x, attn_mask=self.attn_mask)
            x = self.ln_final(x)
            from open_clip.transformer import text_global_pool
            x = text_global_pool(x, tokens, self.text_pool_type,
                                 eos_token_id=self.text_eos_id)
            x = self._project(x)
        return F.normalize(x, dim=-1) if normalize else x

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        proj = self.part('text_projection')
        if proj is None:
            return x
        if isinstance(proj, nn.Linear):
            return proj(x)
        return x @ proj

    def encode_embeddings(self, x: torch.Tensor, pool_index: torch.Tensor) -> torch.Tensor:
        """Run the tower on token embeddings (for learnable contexts).

        Args:
            x (Tensor): ``(N, L, C)`` token embeddings, ``L <= context``.
            pool_index (Tensor): ``(N,)`` position whose output is pooled
                (the end token).

        Returns:
            Tensor: ``(N, D)``.
        """
        transformer = self.part('transformer')
        cast = transformer.get_cast_dtype()
        length = x.shape[1]
        x = x.to(cast) + self.part('positional_embedding')[:length].to(cast)
        mask = self.part('attn_mask')
        if mask is not None:
            mask = mask[:length, :length]
        x = transformer(x, attn_mask=mask)
        x = self.part('ln_final')(x)
        x = x[torch.arange(x.shape[0], device=x.device), pool_index]
        return self._project(x)

    def weights_key(self) -> tuple:
        """Identity of the current tower weights (storage and version of
        every parameter): changes when weights are loaded or updated."""
        return tuple((p.data_ptr(), p._version, p.device, p.dtype)
                     for p in self.tower_parameters())
