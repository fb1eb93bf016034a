"""open_clip text tower with learnable context tokens (CoOp / DenseCLIP)."""
from typing import Optional, Sequence

import torch
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from clipdense.registry import MODELS
from .openclip_text_base import OpenCLIPTextBase, parse_vocabulary


@MODELS.register_module()
class OpenCLIPContextTextEncoder(OpenCLIPTextBase):
    """Text embeddings of ``[SOT] [ctx_1..ctx_N] [class tokens] [EOT]``.

    The language-side prompt of CoOp (Zhou et al., IJCV 2022) and DenseCLIP
    (Rao et al., CVPR 2022, ``CLIPTextContextEncoder``): ``N`` learnable
    context vectors in the token-embedding space are inserted right after
    the start token; each class name is tokenised into
    ``class_context_length`` tokens (start and end token included; longer
    names are truncated with one warning, the end token kept); the end
    token's output, now ``N`` positions later, is projected to the joint
    space. The positional table and causal mask are used for the first
    ``N + class_context_length`` positions only (DenseCLIP: 8 + 5 = 13); the
    table itself keeps open_clip's shape so checkpoints load unchanged.

    The contexts can live here (``num_contexts > 0``, the default, trunc-
    normal init std 0.02; DenseCLIP's code uses std 1.0, see
    ``context_init_std``) or be passed to :meth:`forward`
    (DenseCLIP keeps them in the segmentor). The text tower is frozen by
    default; the contexts are trainable.

    Synonyms inside one vocabulary entry (``'sofa, couch'``) are encoded
    separately and their (unnormalised) embeddings averaged.

    Args:
        arch (str): open_clip architecture whose text tower is used (must
            use CLIP's BPE tokenizer and a causal ``TextTransformer``).
        pretrained (str, optional): open_clip tag, local checkpoint, OpenAI
            TorchScript archive or ``.safetensors``.
        vocabulary (Sequence[str], optional): default class names.
        num_contexts (int): learnable context tokens owned by the module
            (0: contexts must be passed to :meth:`forward`).
        class_context_length (int): tokens per class name incl. start/end.
        context_init_std (float): std of the contexts' truncated-normal init.
        freeze (bool): freeze the text tower (the contexts stay trainable).
        strict (bool): refuse weights of another architecture.
        quick_gelu (bool, optional): QuickGELU override (``None`` follows
            the weights).
        cache_dir (str, optional): where tag weights are looked for.
        init_cfg: accepted for mm configs; the tower is never re-initialised.

    Attributes:
        contexts (nn.Parameter | None): ``(1, num_contexts, C)``, ``C`` the
            token-embedding width.
        token_embed_dim (int): ``C``.
        embed_dim (int): joint-space dimension ``D``.
    """

    def __init__(self, arch: str = 'RN50', pretrained: Optional[str] = None, *,
                 vocabulary: Optional[Sequence[str]] = None,
                 num_contexts: int = 8,
                 class_context_length: int = 5,
                 context_init_std: float = 0.02,
                 freeze: bool = True,
                 strict: bool = True,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None,
                 init_cfg=None):
        super().__init__(arch, pretrained, freeze=freeze, strict=strict,
                         quick_gelu=quick_gelu, cache_dir=cache_dir, init_cfg=init_cfg)
        from open_clip.tokenizer import SimpleTokenizer
        if not isinstance(self.tokenizer, SimpleTokenizer):
            raise NotImplementedError(
                f"'{self.arch}' uses {type(self.tokenizer).__name__}; learnable contexts "
                'need CLIP\'s BPE tokenizer (start/end tokens)')
        if not self._flat and (self.text.cls_emb is not None or self.text.use_pad_mask
                               or self.text.attn_mask is None):
            raise NotImplementedError(f"'{self.arch}' text tower is not a plain causal "
                                      'CLIP text transformer')
        if class_context_length < 3:
            raise ValueError('class_context_length must be >= 3 (start, >=1 name token, end)')
        if num_contexts < 0:
            raise ValueError('num_contexts must be >= 0')
        self.num_contexts = int(num_contexts)
        self.class_context_length = int(class_context_length)
        self.token_embed_dim = int(self.part('token_embedding').weight.shape[1])
        if self.num_contexts + self.class_context_length > self.context_length:
            raise ValueError(
                f'num_contexts + class_context_length = '
                f'{self.num_contexts + self.class_context_length} exceeds the text '
                f'context of {self.context_length}')
        self.context_init_std = context_init_std
        if self.num_contexts:
            self.contexts = nn.Parameter(
                torch.empty(1, self.num_contexts, self.token_embed_dim))
            trunc_normal_(self.contexts, std=context_init_std)
        else:
            self.contexts = None
        self.vocabulary = parse_vocabulary(vocabulary)[0] if vocabulary is not None else None
        self._token_cache = {}

    def class_tokens(self, vocabulary: Optional[Sequence[str]] = None):
        """Tokens of every synonym ``(S, class_context_length)`` and the
        class of each synonym ``(S,)`` (cached per vocabulary)."""
        if vocabulary is None:
            vocabulary = self.vocabulary
        names, synonyms = parse_vocabulary(vocabulary)
        device = self.part('token_embedding').weight.device
        key = (names, device)
        if key not in self._token_cache:
            texts = [s for syn in synonyms for s in syn]
            owner = [k for k, syn in enumerate(synonyms) for _ in syn]
            self.check_truncation(texts, self.class_context_length, 'class names')
            tokens = self.tokenize(texts, self.class_context_length)
            self._token_cache[key] = (tokens, torch.tensor(owner, device=device),
                                      len(names))
        return self._token_cache[key]

    def _pool_index(self, tokens: torch.Tensor, n_ctx: int) -> torch.Tensor:
        pool = self.part('text_pool_type')
        length = tokens.shape[1] + n_ctx
        if pool == 'argmax':  # end token has the largest id
            idx = tokens.argmax(dim=-1)
        elif pool == 'eos':
            idx = (tokens == self.part('text_eos_id')).int().argmax(dim=-1)
        elif pool == 'first':
            return torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
        elif pool == 'last':
            return torch.full((tokens.shape[0],), length - 1, dtype=torch.long,
                              device=tokens.device)
        else:
            raise NotImplementedError(f'text pool type {pool!r} is not supported')
        # positions after the start token moved back by the inserted contexts
        return torch.where(idx >= 1, idx + n_ctx, idx)

    def forward(self, vocabulary: Optional[Sequence[str]] = None,
                context: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Embed the vocabulary with context tokens.

        Args:
            vocabulary (Sequence[str], optional): class names; default: the
                one given at construction.
            context (Tensor, optional): ``(N, C)`` or ``(B, N, C)`` context
                tokens (e.g. image-conditioned); default: :attr:`contexts`.

        Returns:
            Tensor: ``(B, K, D)`` unnormalised text embeddings (``B = 1`` for
            the module's own contexts).
        """
        if context is None:
            if self.contexts is None:
                raise ValueError('num_contexts=0: pass the context tokens to forward()')
            context = self.contexts
        if context.dim() == 2:
            context = context[None]
        if context.dim() != 3 or context.shape[-1] != self.token_embed_dim:
            raise ValueError(f'context must be (N, {self.token_embed_dim}) or '
                             f'(B, N, {self.token_embed_dim}), got {tuple(context.shape)}')
        b, n_ctx, c = context.shape
        if n_ctx + self.class_context_length > self.context_length:
            raise ValueError(f'{n_ctx} contexts + {self.class_context_length} class '
                             f'tokens exceed the text context of {self.context_length}')
        tokens, owner, k = self.class_tokens(vocabulary)
        s = tokens.shape[0]
        emb = self.part('token_embedding')(tokens)  # (S, L1, C)
        emb = emb.to(context.dtype)
        x = torch.cat([
            emb[None, :, :1].expand(b, -1, -1, -1),
            context[:, None].expand(-1, s, -1, -1),
            emb[None, :, 1:].expand(b, -1, -1, -1),
        ], dim=2).reshape(b * s, n_ctx + tokens.shape[1], c)
        idx = self._pool_index(tokens, n_ctx).repeat(b)
        out = self.encode_embeddings(x, idx).reshape(b, s, -1)
        if s == k:
            return out
        summed = out.new_zeros(b, k, out.shape[-1]).index_add_(1, owner, out)
        counts = torch.bincount(owner, minlength=k).to(out.dtype)
        return summed / counts[None, :, None]
