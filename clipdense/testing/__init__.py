"""In-package test helpers: tiny open_clip architectures.

``register_tiny_models()`` adds the JSON architectures shipped in
``clipdense/testing/model_configs/`` to open_clip's registry (and a tiny
EVA02-CLIP trunk to timm's), so tests and examples can build CLIP towers in
milliseconds without weights::

    from clipdense.testing import register_tiny_models
    register_tiny_models()
    backbone = OpenCLIPViT('clipdense-tiny-vit16', pretrained=None)

Architectures (joint-space dimension 32; text tower: width 32, 2 layers,
context 77, CLIP's 49408-token vocabulary):

* ``clipdense-tiny-rn``: CLIP ResNet, layers [1, 1, 1, 1], width 8
  (C5 = 256 channels), trained size 64.
* ``clipdense-tiny-vit16``: ViT, width 32, 4 blocks, patch 16, size 64.
* ``clipdense-tiny-vit14``: ViT, width 32, 4 blocks, patch 14, size 56.
* ``clipdense-tiny-vit16-12l``: ViT, width 32, 12 blocks, patch 16, size
  64 (AnoVL's released code hard-codes 12 blocks; the golden fixtures of
  issue 21 use it).
* ``clipdense-tiny-eva16``: EVA02-CLIP-style timm trunk (RoPE, SwiGLU,
  sub-LN, separate q/k/v), width 32, 4 blocks, patch 16, size 64, with
  open_clip's ``CustomTextCLIP`` layout (text keys under ``text.``).
"""
import os

MODEL_CONFIG_DIR = os.path.join(os.path.dirname(__file__), 'model_configs')
TINY_MODELS = ('clipdense-tiny-rn', 'clipdense-tiny-vit16', 'clipdense-tiny-vit14',
               'clipdense-tiny-eva16', 'clipdense-tiny-vit16-12l')
TINY_EVA_TIMM_NAME = 'clipdense_tiny_eva02_clip'


def _tiny_eva02_clip(pretrained: bool = False, **kwargs):
    """A 4-block EVA02-CLIP trunk (same block type as ``EVA02-B-16``)."""
    from timm.models.eva import Eva
    if pretrained:
        raise ValueError('the tiny test EVA has no pretrained weights')
    for k in ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir'):
        kwargs.pop(k, None)
    args = dict(img_size=64, patch_size=16, embed_dim=32, depth=4, num_heads=2,
                qkv_fused=False, mlp_ratio=4 * 2 / 3, swiglu_mlp=True,
                scale_mlp=True, scale_attn_inner=True, use_rot_pos_emb=True,
                ref_feat_shape=(4, 4), global_pool='token')
    args.update(kwargs)
    return Eva(**args)


_tiny_eva02_clip.__name__ = TINY_EVA_TIMM_NAME


def register_tiny_models():
    """Register the tiny architectures with open_clip (and timm). Idempotent.

    Returns:
        tuple[str]: the open_clip architecture names.
    """
    import open_clip
    import timm
    from timm.models import register_model
    if not timm.is_model(TINY_EVA_TIMM_NAME):
        register_model(_tiny_eva02_clip)
    if not all(name in open_clip.list_models() for name in TINY_MODELS):
        open_clip.add_model_config(MODEL_CONFIG_DIR)
    return TINY_MODELS


__all__ = ['register_tiny_models', 'TINY_MODELS', 'MODEL_CONFIG_DIR']
