"""Shared base of the driving datasets mapped to the 19 Cityscapes classes."""
from typing import Optional

from mmseg.datasets import BaseSegDataset

from .cityscapes_labels import CLASSES, PALETTE, check_mapping


class DGSegDataset(BaseSegDataset):
    """A driving dataset in the 19-class Cityscapes label space.

    Subclasses give their folder layout (``DEFAULT_PREFIX``), image suffix,
    the suffix of the converted train-id files (``TRAIN_ID_SUFFIX``,
    written by ``tools/dataset_converters/dg_labels.py``), the suffix of the
    raw label files (``RAW_SUFFIX``) and their mapping (``MAPPING``).

    ``label_format='train_ids'`` (default) reads the converted files, so
    mmseg's plain ``LoadAnnotations`` works. ``label_format='raw'`` reads
    the files as downloaded; the pipeline must then load them with
    :class:`~clipdense.datasets.transforms.LoadMappedAnnotations`, which
    maps them on the fly (a plain ``LoadAnnotations`` would keep the raw ids
    and is refused).

    Args:
        label_format (str): 'train_ids' or 'raw'.
        **kwargs: the arguments of ``mmseg.datasets.BaseSegDataset``.
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    DEFAULT_PREFIX = dict(img_path='', seg_map_path='')
    IMG_SUFFIX = '.png'
    TRAIN_ID_SUFFIX = '_labelTrainIds.png'
    RAW_SUFFIX = '.png'
    MAPPING = 'cityscapes'
    # folders of the raw and converted labels when they differ (Mapillary)
    RAW_SEG_DIR: Optional[str] = None

    def __init__(self, *, label_format: str = 'train_ids',
                 img_suffix: Optional[str] = None,
                 seg_map_suffix: Optional[str] = None,
                 data_prefix: Optional[dict] = None,
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        if label_format not in ('train_ids', 'raw'):
            raise ValueError(f"label_format must be 'train_ids' or 'raw', "
                             f'got {label_format!r}')
        if reduce_zero_label:
            raise ValueError(f'{type(self).__name__} labels are Cityscapes '
                             'train ids (0 = road); reduce_zero_label must be '
                             'False')
        self.label_format = label_format
        self.label_mapping = check_mapping(
            self.MAPPING if label_format == 'raw' else 'train_ids')
        if data_prefix is None:
            data_prefix = dict(self.DEFAULT_PREFIX)
            if label_format == 'raw' and self.RAW_SEG_DIR is not None:
                data_prefix['seg_map_path'] = self.RAW_SEG_DIR
        if seg_map_suffix is None:
            seg_map_suffix = (self.RAW_SUFFIX if label_format == 'raw'
                              else self.TRAIN_ID_SUFFIX)
        super().__init__(
            img_suffix=img_suffix or self.IMG_SUFFIX,
            seg_map_suffix=seg_map_suffix,
            data_prefix=data_prefix,
            reduce_zero_label=False,
            **kwargs)
        self._check_pipeline()

    def _check_pipeline(self):
        if self.label_format != 'raw':
            return
        for t in getattr(self.pipeline, 'transforms', []):
            if type(t).__name__ == 'LoadAnnotations':
                raise ValueError(
                    f"{type(self).__name__}(label_format='raw') reads "
                    f'{self.MAPPING!r} label ids; load them with '
                    "dict(type='LoadMappedAnnotations') instead of "
                    "LoadAnnotations, or convert the labels with "
                    'tools/dataset_converters/dg_labels.py and use '
                    "label_format='train_ids'")

    def load_data_list(self):
        data_list = super().load_data_list()
        for info in data_list:
            info['label_mapping'] = self.label_mapping
        return data_list
