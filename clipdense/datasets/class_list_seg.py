"""Segmentation datasets whose class names come from a text file (for the
large open-vocabulary benchmarks mmseg lacks: ADE20K-847, Pascal Context-459)."""
import os.path as osp
from typing import Optional

from mmseg.datasets import BaseSegDataset

from clipdense.registry import DATASETS


@DATASETS.register_module()
class ClassListSegDataset(BaseSegDataset):
    """An mmseg folder dataset with ``classes_file`` (one name a line).

    The layout of detectron2's preparation scripts that OVSeg uses
    (``prepare_ade20k_full_sem_seg.py``, ``prepare_pascal_context.py``):
    images as ``.jpg``, labels as 16-bit ``.tif`` with ids ``0..K-1`` and
    ``65535`` = ignore. Load the labels with
    ``LoadAnnotations(imdecode_backend='pillow')`` (16 bit) and evaluate
    with ``IoUMetric(ignore_index=65535)``.

    Args:
        classes_file (str): class names, one a line, in label-id order
            (``#`` lines skipped; relative paths are relative to
            ``data_root``, then to clipdense's resources, e.g.
            ``'ovseg_names/ade847.txt'``, the names OVSeg's authors use).
        **kwargs: ``BaseSegDataset`` arguments (``img_suffix='.jpg'``,
            ``seg_map_suffix='.tif'``, ``ignore_index=65535`` by default).
    """

    def __init__(self, classes_file: str, img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.tif', ignore_index: int = 65535,
                 data_root: Optional[str] = None, **kwargs):
        from .ovseg_names import read_class_names, resolve_class_names_file
        path = classes_file
        if data_root and not osp.isabs(path):
            path = osp.join(data_root, path)
        if not osp.isfile(path):
            path = resolve_class_names_file(classes_file)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'class list {path} not found: write the dataset\'s class names, one a '
                'line in label-id order (e.g. from detectron2\'s ADE20K-full / Pascal '
                'Context-459 preparation scripts)')
        classes = tuple(read_class_names(path))
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        metainfo.setdefault('classes', classes)
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         ignore_index=ignore_index, data_root=data_root,
                         metainfo=metainfo, **kwargs)
