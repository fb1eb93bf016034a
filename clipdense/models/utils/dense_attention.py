"""Dense joint-space paths as small functions over open_clip/timm modules.

Nothing here owns weights: every function reads the parameters of an
existing CLIP block, so the paths stay exact views of the pretrained tower.

* :func:`attnpool_dense` - DenseCLIP (Rao et al., CVPR 2022, Sec. 3.2): the
  ResNet attention pool run with every position as a query.
* :func:`attnpool_value` - MaskCLIP (Zhou et al., ECCV 2022, Sec. 3.1):
  ``c_proj(v_proj(x))`` per position, query/key dropped.
* :class:`BlockOps` - the sub-functions of one pre-norm transformer block,
  used for MaskCLIP's last-block value path (``v`` through the output
  projection, residual and FFN kept), its keys (key smoothing), and the
  V-V attention of CLIP Surgery / AnoVL (``softmax(v v^T / sqrt(d)) v``).
* :data:`LAST_BLOCK_PATHS` - named replacements of the last block
  (ClearCLIP, SCLIP, ...; one module each next to this one), offered by
  :class:`~clipdense.models.backbones.OpenCLIPViT` as joint outputs.
"""
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def attnpool_dense(attnpool: nn.Module, x: torch.Tensor,
                   pos: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """DenseCLIP's attention pool over all positions.

    Same operations as ``open_clip.modified_resnet.AttentionPool2d.forward``
    (mean token prepended, positional table added, multi-head attention with
    the pool's q/k/v/c projections), but every token is kept.

    Args:
        attnpool (nn.Module): open_clip ``AttentionPool2d``.
        x (Tensor): ``(B, C, h, w)`` last-stage feature map.
        pos (Tensor): ``(1 + h*w, C)`` positional table for this size.

    Returns:
        tuple[Tensor, Tensor]: global embedding ``(B, D)`` and dense
        embeddings ``(B, D, h, w)``.
    """
    b, c, h, w = x.shape
    t = x.reshape(b, c, h * w).permute(2, 0, 1)  # (hw, B, C)
    t = torch.cat([t.mean(dim=0, keepdim=True), t], dim=0)
    t = t + pos[:, None, :].to(t.dtype)
    out, _ = F.multi_head_attention_forward(
        query=t, key=t, value=t,
        embed_dim_to_check=t.shape[-1],
        num_heads=attnpool.num_heads,
        q_proj_weight=attnpool.q_proj.weight,
        k_proj_weight=attnpool.k_proj.weight,
        v_proj_weight=attnpool.v_proj.weight,
        in_proj_weight=None,
        in_proj_bias=torch.cat([attnpool.q_proj.bias, attnpool.k_proj.bias,
                                attnpool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.,
        out_proj_weight=attnpool.c_proj.weight,
        out_proj_bias=attnpool.c_proj.bias,
        use_separate_proj_weight=True,
        training=attnpool.training,
        need_weights=False)
    glob = out[0]
    dense = out[1:].permute(1, 2, 0).reshape(b, -1, h, w)
    return glob, dense


def attnpool_value(attnpool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MaskCLIP's ResNet value path ``c_proj(v_proj(x))``.

    Args:
        attnpool (nn.Module): open_clip ``AttentionPool2d``.
        x (Tensor): ``(B, C, h, w)``.

    Returns:
        Tensor: ``(B, D, h, w)``.
    """
    t = x.permute(0, 2, 3, 1)
    t = attnpool.c_proj(attnpool.v_proj(t))
    return t.permute(0, 3, 1, 2).contiguous()


def _split_heads(t: torch.Tensor, num_heads: int) -> torch.Tensor:
    b, n, c = t.shape
    return t.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def _merge_heads(t: torch.Tensor) -> torch.Tensor:
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


class BlockOps:
    """The pieces of one pre-norm transformer block, as functions.

    Supports open_clip ``ResidualAttentionBlock`` (OpenAI/LAION ViTs),
    ``CustomResidualAttentionBlock`` and timm ``EvaBlock`` (EVA/EVA02 CLIP).
    All tensors are batch-first ``(B, N, C)``.
    """

    def __init__(self, block: nn.Module):
        from open_clip.transformer import (CustomResidualAttentionBlock,
                                           ResidualAttentionBlock)
        self.block = block
        if isinstance(block, ResidualAttentionBlock):
            if hasattr(block, 'ln_1_kv'):
                raise NotImplementedError('cross-attention blocks have no dense path')
            self.kind = 'openclip'
            self.num_heads = block.attn.num_heads
        elif isinstance(block, CustomResidualAttentionBlock):
            self.kind = 'openclip_custom'
            self.num_heads = block.attn.num_heads
        elif type(block).__name__ == 'EvaBlock':
            self.kind = 'eva'
            self.num_heads = block.attn.num_heads
        else:
            raise NotImplementedError(
                f'dense attention paths are not implemented for {type(block).__name__} '
                'blocks (supported: open_clip ResidualAttentionBlock, '
                'CustomResidualAttentionBlock, timm EvaBlock)')

    def norm1(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        return b.norm1(x) if self.kind == 'eva' else b.ln_1(x)

    def qkv(self, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v of normalised tokens ``y``, each ``(B, heads, N, d)``,
        after q/k norms where the block has them, without rotary embedding."""
        a = self.block.attn
        if self.kind in ('openclip', 'openclip_custom'):
            q, k, v = F.linear(y, a.in_proj_weight, a.in_proj_bias).chunk(3, dim=-1)
        elif a.qkv is not None:
            bias = None
            if a.q_bias is not None:
                bias = torch.cat((a.q_bias, a.k_bias, a.v_bias))
            q, k, v = F.linear(y, a.qkv.weight, bias).chunk(3, dim=-1)
        else:
            q, k, v = a.q_proj(y), a.k_proj(y), a.v_proj(y)
        q, k, v = (_split_heads(t, self.num_heads) for t in (q, k, v))
        if self.kind == 'openclip_custom':
            q, k = a.ln_q(q), a.ln_k(k)
        elif self.kind == 'eva':
            q, k = a.q_norm(q), a.k_norm(k)
        return q, k, v

    def out(self, o: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Merge heads of an attention output ``o`` ``(B, heads, N, d)`` and
        apply the block's output projection (with inner norm / head scale /
        gate where present), without the residual scaling."""
        a = self.block.attn
        if self.kind == 'openclip':
            return a.out_proj(_merge_heads(o))
        if self.kind == 'openclip_custom':
            if a.head_scale is not None:
                o = o * a.head_scale
            return a.out_proj(a.ln_inner(_merge_heads(o)))
        t = a.norm(_merge_heads(o))
        if getattr(a, 'gate', None) is not None:
            t = t * a.gate(y).sigmoid()
        return a.proj(t)

    def res1(self, t: torch.Tensor) -> torch.Tensor:
        """Residual-branch scaling of the attention output."""
        b = self.block
        if self.kind == 'openclip':
            return b.ls_1(t)
        if self.kind == 'openclip_custom':
            return b.ls_1(b.ln_attn(t))
        return t if b.gamma_1 is None else b.gamma_1 * t

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        """``x + FFN(norm2(x))`` with the block's residual scaling."""
        b = self.block
        if self.kind == 'eva':
            t = b.mlp(b.norm2(x))
            return x + (t if b.gamma_2 is None else b.gamma_2 * t)
        return x + b.ls_2(b.mlp(b.ln_2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's own forward on batch-first tokens ``(B, N, C)``, with
        the attention of open_clip ``ResidualAttentionBlock`` computed by
        fused :func:`~torch.nn.functional.scaled_dot_product_attention`.

        ``nn.MultiheadAttention``'s inference fast path materialises the
        ``N x N`` attention matrix and its softmax; at ViT-B/16 512x512 (1025
        tokens) the fused kernel makes a block about 1.25x faster on the CPU
        (``tools/analysis_tools/speed_report.py``). Results equal the block's
        to float rounding (tested). Other block kinds run their own forward
        (timm's EVA attention is already fused)."""
        b = self.block
        if self.kind != 'openclip':
            return b(x)
        a = b.attn
        y = b.ln_1(x)
        q, k, v = self.qkv(y)
        drop = a.dropout if (b.training and a.dropout) else 0.
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        x = x + b.ls_1(self.out(o, y))
        return x + b.ls_2(b.mlp(b.ln_2(x)))

    # ------------------------------------------------------------------
    def value_path(self, x: torch.Tensor) -> torch.Tensor:
        """MaskCLIP's last-block value path: attention replaced by identity
        (each token attends to itself), residual and FFN kept:
        ``v = x + out(v(LN1(x))); v = v + FFN(LN2(v))``."""
        y = self.norm1(x)
        _, _, v = self.qkv(y)
        xv = x + self.res1(self.out(v, y))
        return self.ffn(xv)

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """MaskCLIP's keys for key smoothing: ``out(k(LN1(x)))`` (MaskCLIP
        passes q, k and v through the output projection), ``(B, N, C)``."""
        y = self.norm1(x)
        _, k, _ = self.qkv(y)
        return self.out(k, y)

    def vv_attention(self, x: torch.Tensor) -> torch.Tensor:
        """V-V self-attention of CLIP Surgery / AnoVL on the block input
        ``x``: ``out(softmax(v v^T / sqrt(d)) v)`` with ``v`` from ``LN1(x)``,
        without residual or FFN. Returns ``(B, N, C)``."""
        y = self.norm1(x)
        _, _, v = self.qkv(y)
        o = F.scaled_dot_product_attention(v, v, v)
        return self.res1(self.out(o, y))


def vv_dual_path_step(ops: BlockOps, x_ori: torch.Tensor,
                      x_vv: Optional[torch.Tensor]) -> torch.Tensor:
    """One block of the V-V dual path (CLIP Surgery; AnoVL Sec. 3.1).

    The new path starts from the original tokens at its first block and then
    accumulates ``Attn_vv(LN1(x_ori))`` of every following dual-path block,
    without FFN; it is always fed from the original path.

    Args:
        ops (BlockOps): the block.
        x_ori (Tensor): input of the block on the original path ``(B, N, C)``.
        x_vv (Tensor | None): V-V path so far (None at its first block).

    Returns:
        Tensor: V-V path after this block ``(B, N, C)``.
    """
    base = x_ori if x_vv is None else x_vv
    return base + ops.vv_attention(x_ori)


#: name -> ``fn(ops: BlockOps, x: Tensor) -> Tensor``: the last block run
#: differently on its input tokens ``x`` ``(B, N, C)``, returning tokens
#: ``(B, N, C)`` that the backbone then passes through its final norm and
#: projection. Filled by :func:`register_last_block_path`.
LAST_BLOCK_PATHS: Dict[str, Callable] = {}


def refuse_eva_blocks(ops: BlockOps, method: str) -> None:
    """Raise ``NotImplementedError`` naming the fix when a last-block path
    written for open_clip ViT blocks meets an EVA block (whose q/k are
    rotated by RoPE, which such a path does not apply)."""
    if ops.kind == 'eva':
        raise NotImplementedError(
            f'{method} is implemented for open_clip ViT blocks; EVA blocks rotate q/k '
            '(RoPE), which this path does not apply. Use an open_clip ViT arch.')


def register_last_block_path(name: str) -> Callable:
    """Decorator: offer ``fn(ops, x)`` as the ViT joint output ``name``.

    The module defining it must be imported by
    ``clipdense/models/utils/__init__.py`` (before the backbones are).
    """

    def wrap(fn: Callable) -> Callable:
        if name in LAST_BLOCK_PATHS or name in ('global', 'dense', 'value', 'keys', 'vv'):
            raise KeyError(f'last-block path {name!r} is already defined')
        LAST_BLOCK_PATHS[name] = fn
        return fn

    return wrap
