"""Mapillary Vistas v1.2 mapped to the 19 Cityscapes classes."""
from clipdense.registry import DATASETS
from .dg_seg import DGSegDataset


@DATASETS.register_module()
class MapillaryCityscapesDataset(DGSegDataset):
    """Mapillary Vistas v1.2 in the 19-class Cityscapes label space, the
    target of the G -> M and C -> M benchmarks (mmseg's
    ``MapillaryDataset_v1`` keeps all 66 classes). Layout of the download
    (v1.2, or the v1.2 folder of the v2.0 download)::

        <data_root>/validation/images/<key>.jpg
        <data_root>/validation/v1.2/labels/<key>.png   ids 0..65 (65 unlabeled)

    ``label_format='train_ids'`` (default) reads
    ``validation/v1.2/labels_cityscapes19/<key>.png`` written by
    ``python tools/dataset_converters/dg_labels.py mapillary <data_root>``;
    ``label_format='raw'`` reads ``v1.2/labels`` with
    ``LoadMappedAnnotations`` (mapping in
    :data:`clipdense.datasets.cityscapes_labels.MAPILLARY_V12_ID_TO_TRAIN_ID`).
    Pass ``data_prefix`` for the training split.
    """
    DEFAULT_PREFIX = dict(img_path='validation/images',
                          seg_map_path='validation/v1.2/labels_cityscapes19')
    RAW_SEG_DIR = 'validation/v1.2/labels'
    IMG_SUFFIX = '.jpg'
    TRAIN_ID_SUFFIX = '.png'
    RAW_SUFFIX = '.png'
    MAPPING = 'mapillary_v1.2'
