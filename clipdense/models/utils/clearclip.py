"""ClearCLIP's last block (Lan et al., "ClearCLIP: Decomposing CLIP
Representations for Dense Vision-Language Inference", ECCV 2024, Sec. 4).

ClearCLIP finds that the residual connection and the feed-forward network of
CLIP's last block carry most of the noise of its dense features, and that
query-query attention localises better than query-key attention. Its last
block therefore keeps only the attention branch, with q-q attention::

    X_out = Proj(Attn_qq(LN(X))),  Attn_qq = softmax(q q^T / sqrt(d)) v

(no residual, no FFN); the backbone then applies CLIP's final norm and
projection (``ln_post``, ``proj``) to every token.

Selected with ``joint_outputs=('clearclip', )`` on
:class:`~clipdense.models.backbones.OpenCLIPViT`; the dense features are
classified by :class:`~clipdense.models.decode_heads.MaskCLIPHead` with
``value_key='clearclip'`` (configs/clearclip/).
"""
import torch
import torch.nn.functional as F

from .dense_attention import BlockOps, refuse_eva_blocks, register_last_block_path


@register_last_block_path('clearclip')
def clearclip_last_block(ops: BlockOps, x: torch.Tensor) -> torch.Tensor:
    """ClearCLIP's last block on its input tokens ``x`` ``(B, N, C)``:
    ``out(softmax(q q^T / sqrt(d)) v)`` with q, v from ``LN1(x)``, no
    residual, no FFN. Returns ``(B, N, C)``."""
    refuse_eva_blocks(ops, 'ClearCLIP')
    y = ops.norm1(x)
    q, _, v = ops.qkv(y)
    o = F.scaled_dot_product_attention(q, q, v)
    return ops.res1(ops.out(o, y))
