"""The class names OVSeg (Liang et al., CVPR 2023) prompts CLIP with.

The authors read every dataset's names from its detectron2 registration and
use each (stripped) name as one string, commas included ("road, route"):
ADE20K-150 from detectron2's ``ADE20K_SEM_SEG_CATEGORIES`` (51 of them
differ from mmseg's ``ADE20KDataset`` names), ADE20K-847, Pascal
Context-59/459 and VOC-20 ("diningtable", "tvmonitor") from their
``register_*.py``, and COCO-Stuff-171 with its raw training names
("wall-other", "floor-wood"). The files under
``clipdense/datasets/resources/ovseg_names/`` were written by
``tools/dataset_converters/ovseg_class_names.py`` from ov-seg commit
``36f49d4`` and detectron2 commit ``02b5c4e2``.
"""
import os.path as osp
from typing import List

OVSEG_NAMES_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'resources', 'ovseg_names')
OVSEG_DATASETS = ('ade150', 'ade847', 'pc59', 'pc459', 'voc20', 'coco_stuff171')


def read_class_names(path: str) -> List[str]:
    """Names of a class-name file: one a line, in label-id order; lines that
    start with ``#`` and blank lines are skipped; a name is kept whole
    (commas included)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'class-name file {path} not found (one name a line)')
    with open(path, encoding='utf-8') as f:
        names = [line.strip() for line in f
                 if line.strip() and not line.lstrip().startswith('#')]
    if not names:
        raise ValueError(f'class-name file {path} has no names')
    return names


def resolve_class_names_file(path: str) -> str:
    """``path`` if it exists, else the same relative path under clipdense's
    resources (``'ovseg_names/ade150.txt'``)."""
    if osp.isfile(path) or osp.isabs(path):
        return path
    res = osp.join(osp.dirname(OVSEG_NAMES_DIR), path)
    return res if osp.isfile(res) else path


def ovseg_class_names(dataset: str) -> List[str]:
    """The authors' names of one of :data:`OVSEG_DATASETS`."""
    if dataset not in OVSEG_DATASETS:
        raise ValueError(f'unknown OVSeg dataset {dataset!r}; one of {OVSEG_DATASETS}')
    return read_class_names(osp.join(OVSEG_NAMES_DIR, f'{dataset}.txt'))
