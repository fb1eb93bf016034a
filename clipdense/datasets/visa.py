"""VisA (Zou et al., "SPot-the-Difference Self-Supervised Pre-training for
Anomaly Detection and Segmentation", ECCV 2022) from its split CSV."""
import csv
import os.path as osp
import re
from typing import Dict, Optional, Sequence

from mmengine.dataset import BaseDataset

from clipdense.registry import DATASETS

VISA_CLASSES = ('candle', 'capsules', 'cashew', 'chewinggum', 'fryum',
                'macaroni1', 'macaroni2', 'pcb1', 'pcb2', 'pcb3', 'pcb4',
                'pipe_fryum')
# AnoVL's prompt names (vis_test.py): the two macaroni sets are one object
DEFAULT_NAME_MAP = {'macaroni1': 'macaroni', 'macaroni2': 'macaroni'}
REQUIRED_COLUMNS = ('object', 'split', 'label', 'image', 'mask')


@DATASETS.register_module()
class VisADataset(BaseDataset):
    """VisA in its released layout, read through a split CSV.

    ``split_csv`` (e.g. ``split_csv/1cls.csv`` of the VisA release) has the
    header ``object,split,label,image,mask``; ``label`` is ``normal`` or
    ``anomaly``, ``image`` and ``mask`` are paths relative to ``data_root``
    and ``mask`` is empty for normal images::

        object,split,label,image,mask
        candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png
        candle,test,normal,candle/Data/Images/Normal/0100.JPG,

    Each sample's info has ``img_path``, ``category`` (the ``object``
    column), ``cls_name`` (the name the prompts use: ``name_map`` applied,
    underscores as spaces), ``anomaly`` (0/1), ``defect_type`` ('good' /
    'anomaly') and ``seg_map_path`` (None for normal images; add
    ``LoadAnomalyAnnotations`` to the pipeline for the zero masks).

    Args:
        data_root (str): the VisA root (folders per object).
        split_csv (str): the CSV, relative to ``data_root`` or absolute.
        split (str): the ``split`` column value to keep ('test' or 'train').
        categories (Sequence[str], optional): objects to keep.
        name_map (dict, optional): object -> prompt name
            (default ``macaroni1/2 -> macaroni`` as AnoVL does).
        check_files (bool): raise at load time for missing image/mask files.
        readable_names (bool): underscores of the prompt name as spaces
            (default); ``False`` keeps them (``'pipe_fryum'``), as AnoVL.
        **kwargs: the arguments of ``mmengine.dataset.BaseDataset``.
    """
    METAINFO = dict(classes=('normal', 'anomaly'),
                    palette=[[0, 0, 0], [255, 255, 255]])

    def __init__(self, data_root: str, *,
                 split_csv: str = 'split_csv/1cls.csv',
                 split: str = 'test',
                 categories: Optional[Sequence[str]] = None,
                 name_map: Optional[Dict[str, str]] = None,
                 check_files: bool = True,
                 readable_names: bool = True,
                 **kwargs) -> None:
        self.split_csv = split_csv
        self.split = split
        self.categories = tuple(categories) if categories else None
        self.name_map = dict(DEFAULT_NAME_MAP if name_map is None else name_map)
        self.check_files = check_files
        self.readable_names = bool(readable_names)
        super().__init__(data_root=data_root, **kwargs)

    def _csv_path(self):
        p = self.split_csv
        return p if osp.isabs(p) else osp.join(self.data_root, p)

    def prompt_name(self, obj: str) -> str:
        name = self.name_map.get(obj, obj)
        return name.replace('_', ' ') if self.readable_names else name

    def load_data_list(self):
        path = self._csv_path()
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'VisA split CSV {path} not found; VisA ships split_csv/1cls.csv '
                '(columns object,split,label,image,mask) - set split_csv= to its path')
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            cols = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in cols]
            if missing:
                raise ValueError(f'{path}: missing columns {missing}; expected the '
                                 f'header {",".join(REQUIRED_COLUMNS)} (got {cols})')
            rows = [{k.strip(): (v or '').strip() for k, v in r.items() if k}
                    for r in reader]
        known = {r['object'] for r in rows}
        if self.categories is not None:
            unknown = [c for c in self.categories if c not in known]
            if unknown:
                raise ValueError(f'{path}: categories {unknown} do not occur in the CSV '
                                 f'(objects: {sorted(known)})')
        data_list = []
        for n, r in enumerate(rows, start=2):
            if r['split'] != self.split:
                continue
            if self.categories is not None and r['object'] not in self.categories:
                continue
            label = r['label'].lower()
            if label not in ('normal', 'anomaly'):
                raise ValueError(f"{path} line {n}: label must be 'normal' or "
                                 f"'anomaly', got {r['label']!r}")
            anomalous = label == 'anomaly'
            if anomalous and not r['mask']:
                raise ValueError(f'{path} line {n}: anomalous image {r["image"]} has '
                                 'no mask path')
            img = osp.join(self.data_root, r['image'])
            mask = osp.join(self.data_root, r['mask']) if anomalous else None
            if self.check_files:
                for p in (img, mask):
                    if p is not None and not osp.isfile(p):
                        raise FileNotFoundError(f'{path} line {n}: {p} does not exist')
            data_list.append(dict(
                img_path=img, seg_map_path=mask, category=r['object'],
                cls_name=self.prompt_name(r['object']),
                defect_type='anomaly' if anomalous else 'good',
                anomaly=int(anomalous), reduce_zero_label=False, seg_fields=[]))
        if not data_list:
            raise ValueError(f'{path}: no rows with split={self.split!r}'
                             + (f' for {list(self.categories)}' if self.categories else ''))
        return data_list


def natural_name(obj: str) -> str:
    """'pcb1' -> 'pcb', 'pipe_fryum' -> 'pipe fryum' (a helper for
    ``name_map`` when trailing digits should not reach the prompts)."""
    return re.sub(r'\d+$', '', obj).replace('_', ' ').strip()
