"""Shared helpers of clipdense's CLIP towers (weights, templates, dense paths)."""
from .clip_loading import (WeightSource, check_arch, create_open_clip,
                           default_cache_dir, is_offline, load_tower_weights,
                           load_weight_file, resolve_pretrained)
from .dense_attention import (LAST_BLOCK_PATHS, BlockOps, attnpool_dense,
                              attnpool_value, register_last_block_path,
                              vv_dual_path_step)
# last-block paths register themselves in LAST_BLOCK_PATHS
from .clearclip import clearclip_last_block  # noqa: E402
from .sclip import sclip_last_block  # noqa: E402
from .freezing import (FREEZE_MODES, apply_freeze, check_freeze_mode,
                       set_batchnorm_eval)
from .pos_embed import SizeCache, resize_pos_table
from .templates import (IMAGENET_TEMPLATES, MASKCLIP_TEMPLATES,
                        SINGLE_TEMPLATE, TEMPLATE_SETS, VILD_TEMPLATES,
                        get_templates)

__all__ = [
    'WeightSource', 'check_arch', 'create_open_clip', 'default_cache_dir',
    'is_offline', 'load_tower_weights', 'load_weight_file',
    'resolve_pretrained', 'BlockOps', 'attnpool_dense', 'attnpool_value',
    'vv_dual_path_step', 'LAST_BLOCK_PATHS', 'register_last_block_path',
    'clearclip_last_block', 'sclip_last_block', 'FREEZE_MODES', 'apply_freeze', 'check_freeze_mode',
    'set_batchnorm_eval', 'SizeCache', 'resize_pos_table',
    'IMAGENET_TEMPLATES', 'MASKCLIP_TEMPLATES', 'SINGLE_TEMPLATE',
    'TEMPLATE_SETS', 'VILD_TEMPLATES', 'get_templates'
]
