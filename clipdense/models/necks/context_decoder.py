"""DenseCLIP's context decoder: queries attend to the visual context."""
from collections import OrderedDict
from typing import Optional

import torch
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from clipdense.registry import MODELS


ATTN_IMPLS = ('mha', 'denseclip')


class _DenseCLIPAttention(nn.Module):
    """Multi-head attention as in DenseCLIP's code: q/k/v linears without
    bias, no dropout on the attention weights, output projection (with
    bias) followed by dropout."""

    def __init__(self, width: int, num_heads: int, proj_drop: float):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (width // num_heads) ** -0.5
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width, bias=False)
        self.proj = nn.Linear(width, width)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, n, c = q.shape
        m = k.shape[1]
        h = self.num_heads
        q = self.q_proj(q).reshape(b, n, h, c // h).transpose(1, 2)
        k = self.k_proj(k).reshape(b, m, h, c // h).transpose(1, 2)
        v = self.v_proj(v).reshape(b, m, h, c // h).transpose(1, 2)
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class _DecoderLayer(nn.Module):
    """Pre-norm transformer decoder layer: self-attention over the queries,
    cross-attention to the memory, MLP (each with a residual).

    ``attn_impl='mha'``: ``nn.MultiheadAttention`` (q/k/v biases, dropout on
    the attention weights and on the residual branch). ``'denseclip'``: the
    authors' attention (see :class:`_DenseCLIPAttention`); the attention
    branches then have no further dropout, the MLP branch keeps it.
    """

    def __init__(self, width: int, num_heads: int, dropout: float,
                 attn_impl: str = 'mha'):
        super().__init__()
        self.attn_impl = attn_impl
        if attn_impl == 'denseclip':
            attn = (lambda: _DenseCLIPAttention(width, num_heads, dropout))
        else:
            attn = (lambda: nn.MultiheadAttention(width, num_heads, dropout=dropout,
                                                  batch_first=True))
        self.norm1 = nn.LayerNorm(width)
        self.self_attn = attn()
        self.norm2 = nn.LayerNorm(width)
        self.cross_attn = attn()
        self.norm3 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, width * 4), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(width * 4, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        if self.attn_impl == 'denseclip':
            q = self.norm1(x)
            x = x + self.self_attn(q, q, q)
            x = x + self.cross_attn(self.norm2(x), mem, mem)
            return x + self.drop(self.mlp(self.norm3(x)))
        q = self.norm1(x)
        x = x + self.drop(self.self_attn(q, q, q, need_weights=False)[0])
        q = self.norm2(x)
        x = x + self.drop(self.cross_attn(q, mem, mem, need_weights=False)[0])
        return x + self.drop(self.mlp(self.norm3(x)))


@MODELS.register_module()
class ContextDecoder(BaseModule):
    """Transformer decoder from DenseCLIP's context-aware prompting (Rao et
    al., CVPR 2022, Sec. 3.3): a set of queries attends to the visual
    context ``[global, dense]`` of an image.

    * Post-model prompting: the queries are the ``K`` class text embeddings
      and the output is the residual ``v_post`` of
      ``t <- t + gamma * v_post`` (``query_dim = visual_dim = out_dim = D``).
    * Pre-model prompting: the queries are ``N`` learnable vectors and the
      output ``v_pre`` (``out_dim`` = the text tower's token width) is fed
      to the text encoder as its context tokens.

    Layout (as DenseCLIP's code): ``memory_proj`` (LN, Linear, LN) and
    ``query_proj`` (LN, Linear) into ``width``; ``num_layers`` pre-norm
    decoder layers (self-attention, cross-attention, MLP x4); ``out_proj``
    (LN, Linear) to ``out_dim``. Linear weights are truncated-normal (std
    0.02), biases zero, LayerNorms identity. Layer-norm parameter names
    contain ``norm`` so that a ``'norm'`` optimizer key exempts them from
    weight decay (the authors' projection LayerNorms, ``memory_proj.0``
    etc., did not match their ``'norm'`` key).

    ``attn_impl``: ``'mha'`` (default; ``nn.MultiheadAttention`` with q/k/v
    biases, attention-weight dropout, xavier-initialised in-projection) or
    ``'denseclip'`` (the authors' attention: q/k/v without bias, dropout
    only after the output projection, all linears truncated-normal; their
    checkpoints map onto it 1:1).

    Args:
        query_dim (int, optional): channels of the queries (default
            ``visual_dim``).
        visual_dim (int, optional): channels of the memory (default
            ``query_dim``); DenseCLIP's configs give only this one.
        out_dim (int, optional): output channels (default ``query_dim``).
        width (int): decoder width (DenseCLIP: 256).
        num_heads (int): attention heads (DenseCLIP: 4).
        num_layers (int): decoder layers (DenseCLIP: 3).
        dropout (float): dropout in attention and MLP (DenseCLIP: 0.1).
        attn_impl (str): ``'mha'`` or ``'denseclip'`` (see above).
    """

    def __init__(self, query_dim: Optional[int] = None, visual_dim: Optional[int] = None,
                 out_dim: Optional[int] = None, *, width: int = 256,
                 num_heads: int = 4, num_layers: int = 3, dropout: float = 0.1,
                 attn_impl: str = 'mha', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if query_dim is None and visual_dim is None:
            raise ValueError('ContextDecoder needs query_dim or visual_dim (the '
                             'DenseCLIP segmentor fills them in)')
        query_dim = visual_dim if query_dim is None else query_dim
        visual_dim = query_dim if visual_dim is None else visual_dim
        out_dim = query_dim if out_dim is None else out_dim
        if width % num_heads:
            raise ValueError(f'width {width} is not divisible by num_heads {num_heads}')
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}')
        self.attn_impl = attn_impl
        if num_layers < 1:
            raise ValueError('num_layers must be >= 1')
        self.query_dim, self.visual_dim, self.out_dim = query_dim, visual_dim, out_dim
        self.memory_proj = nn.Sequential(OrderedDict(
            norm_in=nn.LayerNorm(visual_dim), linear=nn.Linear(visual_dim, width),
            norm_out=nn.LayerNorm(width)))
        self.query_proj = nn.Sequential(OrderedDict(
            norm_in=nn.LayerNorm(query_dim), linear=nn.Linear(query_dim, width)))
        self.layers = nn.ModuleList(
            _DecoderLayer(width, num_heads, dropout, attn_impl) for _ in range(num_layers))
        self.out_proj = nn.Sequential(OrderedDict(
            norm_in=nn.LayerNorm(width), linear=nn.Linear(width, out_dim)))
        self._reset()

    def _reset(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def init_weights(self):
        if self.init_cfg is None:
            self._reset()
            self._is_init = True
        else:
            super().init_weights()

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Decode.

        Args:
            queries (Tensor): ``(B, Q, query_dim)``.
            memory (Tensor): ``(B, M, visual_dim)`` visual context.

        Returns:
            Tensor: ``(B, Q, out_dim)``.
        """
        if queries.dim() != 3 or memory.dim() != 3 or queries.shape[0] != memory.shape[0]:
            raise ValueError(f'expected queries (B, Q, {self.query_dim}) and memory '
                             f'(B, M, {self.visual_dim}), got {tuple(queries.shape)} '
                             f'and {tuple(memory.shape)}')
        mem = self.memory_proj(memory)
        x = self.query_proj(queries)
        for layer in self.layers:
            x = layer(x, mem)
        return self.out_proj(x)
