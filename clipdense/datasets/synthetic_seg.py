"""Semantic segmentation on the synthetic world (mmseg folder layout)."""
from typing import Optional

from mmseg.datasets import BaseSegDataset

from clipdense.registry import DATASETS
from .synthetic import spec


@DATASETS.register_module()
class SyntheticSegDataset(BaseSegDataset):
    """The synthetic world's semantic segmentation split of one style.

    Layout (written by :func:`clipdense.datasets.synthetic.generate_world`)::

        <data_root>/<style>/img_dir/{train,val}/*.png
        <data_root>/<style>/ann_dir/{train,val}/*.png   ids 0..12, 255 ignore

    Use it like any mmseg folder dataset (``data_root`` + ``data_prefix``),
    or pass ``style`` and ``split`` and let the prefixes follow::

        dict(type='SyntheticSegDataset', data_root='data/synthetic',
             style='fog', split='val', pipeline=[...])

    Classes: 10 things then 3 stuff classes, see
    :data:`clipdense.datasets.synthetic.spec.CLASSES`. A ``metainfo`` with a
    subset of the classes remaps labels through mmseg's ``label_map`` (the
    others become 255), e.g. for the open-vocabulary seen split.

    Args:
        style (str, optional): a style of :data:`spec.STYLES`; sets
            ``data_prefix`` to ``<style>/img_dir/<split>`` and
            ``<style>/ann_dir/<split>``.
        split (str): 'train' or 'val', used with ``style``.
        **kwargs: the arguments of ``mmseg.datasets.BaseSegDataset``.
    """
    METAINFO = dict(classes=spec.CLASSES,
                    palette=[list(p) for p in spec.PALETTE])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 *,
                 style: Optional[str] = None,
                 split: str = 'train',
                 **kwargs) -> None:
        if style is not None:
            if style not in spec.STYLES:
                raise ValueError(f'unknown style {style!r}; the synthetic '
                                 f'world has {spec.STYLES}')
            if 'data_prefix' in kwargs:
                raise ValueError('pass either style/split or data_prefix, '
                                 'not both')
            kwargs['data_prefix'] = dict(
                img_path=f'{style}/img_dir/{split}',
                seg_map_path=f'{style}/ann_dir/{split}')
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
