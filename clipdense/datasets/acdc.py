"""ACDC (Sakaridis et al., ICCV 2021): fog, night, rain and snow driving
scenes in the Cityscapes label space."""
import os.path as osp
from typing import Sequence, Union

from mmengine import fileio

from clipdense.registry import DATASETS
from .dg_seg import DGSegDataset

CONDITIONS = ('fog', 'night', 'rain', 'snow')


@DATASETS.register_module()
class ACDCDataset(DGSegDataset):
    """ACDC, the adverse-condition target of the Cityscapes -> ACDC
    benchmark. Layout of the download (``rgb_anon_trainvaltest`` +
    ``gt_trainval``)::

        <data_root>/rgb_anon/<cond>/<split>/<seq>/<seq>_frame_<n>_rgb_anon.png
        <data_root>/gt/<cond>/<split>/<seq>/<seq>_frame_<n>_gt_labelTrainIds.png
                                        (also _gt_labelIds.png, _gt_labelColor.png)

    ACDC ships train-id files, so no conversion is needed
    (``label_format='raw'`` reads ``_gt_labelIds.png`` with
    ``LoadMappedAnnotations`` instead).

    Args:
        conditions (str | sequence[str]): any of 'fog', 'night', 'rain',
            'snow' (default all four, the ACDC "all" split).
        split (str): 'train', 'val' or 'test' (test has no public labels).
        **kwargs: the arguments of :class:`DGSegDataset` (``data_prefix``
            is derived from ``conditions`` and ``split``).
    """
    IMG_SUFFIX = '_rgb_anon.png'
    TRAIN_ID_SUFFIX = '_gt_labelTrainIds.png'
    RAW_SUFFIX = '_gt_labelIds.png'
    MAPPING = 'cityscapes'

    def __init__(self, *, conditions: Union[str, Sequence[str]] = CONDITIONS,
                 split: str = 'val', **kwargs) -> None:
        if isinstance(conditions, str):
            conditions = (conditions, )
        conditions = tuple(conditions)
        bad = [c for c in conditions if c not in CONDITIONS]
        if bad or not conditions:
            raise ValueError(f'ACDC conditions must be a non-empty subset of '
                             f'{CONDITIONS}, got {list(conditions)}')
        if split not in ('train', 'val', 'test'):
            raise ValueError(f"ACDC split must be 'train', 'val' or 'test', "
                             f'got {split!r}')
        if 'data_prefix' in kwargs:
            raise ValueError('ACDCDataset derives data_prefix from conditions '
                             'and split; pass those instead')
        self.conditions = conditions
        self.split = split
        super().__init__(data_prefix=dict(img_path='rgb_anon', seg_map_path='gt'),
                         **kwargs)

    def load_data_list(self):
        img_root = self.data_prefix['img_path']
        seg_root = self.data_prefix['seg_map_path']
        n = len(self.img_suffix)
        data_list = []
        for cond in self.conditions:
            img_dir = osp.join(img_root, cond, self.split)
            seg_dir = osp.join(seg_root, cond, self.split)
            if not fileio.isdir(img_dir, backend_args=self.backend_args):
                raise FileNotFoundError(
                    f'ACDC folder {img_dir} does not exist; data_root must '
                    'hold rgb_anon/<condition>/<split>/ (and gt/...)')
            for img in fileio.list_dir_or_file(
                    img_dir, list_dir=False, suffix=self.img_suffix,
                    recursive=True, backend_args=self.backend_args):
                data_list.append(dict(
                    img_path=osp.join(img_dir, img),
                    seg_map_path=osp.join(seg_dir, img[:-n] + self.seg_map_suffix),
                    condition=cond,
                    label_map=self.label_map,
                    reduce_zero_label=False,
                    label_mapping=self.label_mapping,
                    seg_fields=[]))
        return sorted(data_list, key=lambda x: x['img_path'])
