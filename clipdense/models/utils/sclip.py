"""SCLIP's last block (Wang et al., "SCLIP: Rethinking Self-Attention for
Dense Vision-Language Inference", ECCV 2024, Sec. 3).

SCLIP replaces the attention of CLIP's last block by *correlative
self-attention* (CSA): every token attends to the tokens whose projections
correlate with its own, through the query and the key projection alike::

    Attn_csa = (softmax(q q^T / sqrt(d)) + softmax(k k^T / sqrt(d))) v

The rest of the block is kept as the authors' code runs it (residual and
FFN): ``x = x + Proj(Attn_csa(LN1(x))); x = x + FFN(LN2(x))``; the backbone
then applies CLIP's final norm and projection to every token.

Selected with ``joint_outputs=('sclip', )`` on
:class:`~clipdense.models.backbones.OpenCLIPViT`; classified by
:class:`~clipdense.models.decode_heads.MaskCLIPHead` with
``value_key='sclip'`` (configs/sclip/).
"""
import torch
import torch.nn.functional as F

from .dense_attention import BlockOps, refuse_eva_blocks, register_last_block_path


@register_last_block_path('sclip')
def sclip_last_block(ops: BlockOps, x: torch.Tensor) -> torch.Tensor:
    """SCLIP's last block on its input tokens ``x`` ``(B, N, C)``:
    correlative self-attention (q-q plus k-k softmax, both applied to v),
    residual and FFN kept. Returns ``(B, N, C)``."""
    refuse_eva_blocks(ops, 'SCLIP')
    y = ops.norm1(x)
    q, k, v = ops.qkv(y)
    o = F.scaled_dot_product_attention(q, q, v) + F.scaled_dot_product_attention(k, k, v)
    return ops.ffn(x + ops.res1(ops.out(o, y)))
