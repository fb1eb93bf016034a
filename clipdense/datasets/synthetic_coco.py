"""Detection / instance segmentation on the synthetic world (COCO json)."""
from mmdet.datasets import CocoDataset

from clipdense.registry import DATASETS
from .synthetic import spec


@DATASETS.register_module()
class SyntheticCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset`` with the synthetic world's thing classes.

    The world writes one COCO file per style and split::

        <data_root>/<style>/annotations/instances_{train,val}.json
        <data_root>/<style>/img_dir/{train,val}/*.png   (``file_name``)

    Masks are compressed RLE (``iscrowd=0``), exactly the visible pixels of
    each instance (they agree with the semantic maps in ``ann_dir``); load
    them with mmdet's ``LoadAnnotations(with_mask=True)`` (``poly2mask``
    must stay True, its default, for RLE). From a detection config (default
    scope ``mmdet``) name it ``clipdense.SyntheticCocoDataset``::

        dict(type='clipdense.SyntheticCocoDataset', data_root=root,
             ann_file='flat/annotations/instances_train.json',
             data_prefix=dict(img='flat/img_dir/train/'), pipeline=[...])
    """
    METAINFO = dict(classes=spec.THING_CLASSES,
                    palette=[tuple(p) for p in
                             spec.PALETTE[:len(spec.THING_CLASSES)]])
