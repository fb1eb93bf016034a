"""Load a raw driving-dataset label file and map it to the 19 Cityscapes
classes on the fly (no conversion step needed)."""
from typing import Optional

from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations

from clipdense.registry import TRANSFORMS
from ..cityscapes_labels import check_mapping, decode_label, to_train_ids


@TRANSFORMS.register_module()
class LoadMappedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` for raw label files of another label
    space: reads the file (16-bit and multi-channel SYNTHIA labels
    included) and maps it to Cityscapes train ids with
    :func:`clipdense.datasets.cityscapes_labels.to_train_ids`, where every
    value the mapping does not list becomes 255.

    Use it with a driving dataset built with ``label_format='raw'``
    (:class:`~clipdense.datasets.GTA5Dataset`, ``SynthiaDataset``,
    ``ACDCDataset``, ``MapillaryCityscapesDataset``), which records the
    mapping of its files in each sample (``label_mapping``), or name the
    mapping here::

        dict(type='LoadMappedAnnotations')                    # from the dataset
        dict(type='LoadMappedAnnotations', mapping='synthia')  # explicit

    Args:
        mapping (str, optional): ``'cityscapes'``/``'gta5'`` (Cityscapes
            label ids), ``'synthia'``, ``'mapillary_v1.2'`` or
            ``'train_ids'``; ``None`` takes the sample's ``label_mapping``.
        backend_args (dict, optional): file backend arguments.
    """

    def __init__(self, mapping: Optional[str] = None, backend_args=None) -> None:
        super().__init__(reduce_zero_label=None, backend_args=backend_args)
        self.mapping = None if mapping is None else check_mapping(mapping)

    def _load_seg_map(self, results: dict) -> None:
        mapping = self.mapping or results.get('label_mapping')
        if mapping is None:
            raise ValueError(
                'LoadMappedAnnotations: no label mapping; pass mapping=... or '
                "build the dataset with label_format='raw'")
        if results.get('reduce_zero_label', False):
            raise ValueError('LoadMappedAnnotations maps labels itself; '
                             'build the dataset with reduce_zero_label=False')
        path = results['seg_map_path']
        data = fileio.get(path, backend_args=self.backend_args)
        gt = to_train_ids(decode_label(data, check_mapping(mapping), path),
                          mapping)
        # custom classes (a metainfo with a subset), as LoadAnnotations does
        if results.get('label_map', None):
            src = gt.copy()
            for old_id, new_id in results['label_map'].items():
                gt[src == old_id] = new_id
        results['gt_seg_map'] = gt
        results['seg_fields'].append('gt_seg_map')

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(mapping={self.mapping!r})'
