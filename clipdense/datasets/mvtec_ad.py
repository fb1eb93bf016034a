"""MVTec AD reader (the real dataset's folder layout)."""
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.dataset import BaseDataset

from clipdense.registry import DATASETS

IMG_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')


@DATASETS.register_module()
class MVTecADDataset(BaseDataset):
    """MVTec AD (and datasets in its layout, e.g. the synthetic world's
    ``mvtec/`` tree)::

        <data_root>/<category>/train/good/000.png
        <data_root>/<category>/test/good/000.png
        <data_root>/<category>/test/<defect>/000.png
        <data_root>/<category>/ground_truth/<defect>/000_mask.png  (0/255)

    Each sample's info has ``img_path``, ``category`` (folder name),
    ``cls_name`` (the prompts' name: the category, by default with spaces
    for underscores), ``defect_type``
    ('good' or the defect folder), ``anomaly`` (0/1) and ``seg_map_path``
    (the mask of an anomalous test image; None for good images, whose mask
    is all zeros). A missing mask of an anomalous image raises at load time.

    Args:
        data_root (str): folder holding the category folders.
        categories (sequence[str], optional): categories to read; default
            all folders of ``data_root`` that contain ``train`` or ``test``.
        split (str): 'test' (all test images) or 'train' (good only).
        readable_names (bool): ``cls_name`` with spaces for underscores
            (``'metal nut'``, default); ``False`` keeps the folder name
            (``'metal_nut'``), as AnoVL's prompts use it.
        **kwargs: the arguments of ``mmengine.dataset.BaseDataset``.
    """
    METAINFO = dict(classes=('normal', 'anomaly'),
                    palette=[[0, 0, 0], [255, 255, 255]])

    def __init__(self,
                 data_root: str,
                 *,
                 categories: Optional[Sequence[str]] = None,
                 split: str = 'test',
                 readable_names: bool = True,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.categories = tuple(categories) if categories else None
        self.split = split
        self.readable_names = bool(readable_names)
        super().__init__(data_root=data_root, **kwargs)

    def _list_categories(self):
        if self.categories is not None:
            return list(self.categories)
        return sorted(
            d for d in os.listdir(self.data_root)
            if osp.isdir(osp.join(self.data_root, d, 'train'))
            or osp.isdir(osp.join(self.data_root, d, 'test')))

    def load_data_list(self):
        data_list = []
        for cat in self._list_categories():
            split_dir = osp.join(self.data_root, cat, self.split)
            if not osp.isdir(split_dir):
                raise FileNotFoundError(
                    f'MVTec AD layout: {split_dir} does not exist')
            for defect in sorted(os.listdir(split_dir)):
                ddir = osp.join(split_dir, defect)
                if not osp.isdir(ddir):
                    continue
                for name in sorted(os.listdir(ddir)):
                    stem, ext = osp.splitext(name)
                    if ext.lower() not in IMG_SUFFIXES:
                        continue
                    info = dict(
                        img_path=osp.join(ddir, name), category=cat,
                        cls_name=cat.replace('_', ' ') if self.readable_names else cat,
                        defect_type=defect,
                        anomaly=int(defect != 'good'), seg_map_path=None,
                        reduce_zero_label=False, seg_fields=[])
                    if defect != 'good':
                        mask = osp.join(self.data_root, cat, 'ground_truth',
                                        defect, f'{stem}_mask.png')
                        if not osp.isfile(mask):
                            raise FileNotFoundError(
                                f'MVTec AD layout: {mask} (mask of '
                                f'{info["img_path"]}) does not exist')
                        info['seg_map_path'] = mask
                    data_list.append(info)
        return data_list
