"""The embedded synthetic world: a procedural benchmark written in the real
datasets' formats (mmseg folders, COCO, captions, MVTec AD, RefCOCO-style
referring segmentation, AGD20K-style affordance tree, open-vocabulary split).

Only numpy and Pillow are needed to generate it. Entry points:
:func:`generate_world` (library) and
``tools/dataset_converters/generate_synthetic_world.py`` (CLI).
"""
from . import spec
from .spec import (ACTIONS, CLASSES, OBJECT_PARTS, PALETTE, PARTS,
                   SEEN_CLASSES, SOURCE_STYLE, STUFF_CLASSES, STYLES,
                   TARGET_STYLES, THING_CLASSES, UNSEEN_CLASSES)
from .world import ALL_PARTS, generate_world, world_paths
from .writers import rle_decode, rle_encode

__all__ = [
    'generate_world', 'world_paths', 'ALL_PARTS', 'spec', 'CLASSES',
    'THING_CLASSES', 'STUFF_CLASSES', 'PALETTE', 'STYLES', 'SOURCE_STYLE',
    'TARGET_STYLES', 'PARTS', 'OBJECT_PARTS', 'ACTIONS', 'SEEN_CLASSES',
    'UNSEEN_CLASSES', 'rle_encode', 'rle_decode'
]
