"""GTA5 (Playing for Data, Richter et al., ECCV 2016) in the 19-class
Cityscapes label space."""
from clipdense.registry import DATASETS
from .dg_seg import DGSegDataset


@DATASETS.register_module()
class GTA5Dataset(DGSegDataset):
    """GTA5, the synthetic source of the G -> {Cityscapes, BDD100K,
    Mapillary} domain generalization benchmark (VLTSeg trains on all
    24,966 images). Layout of the download::

        <data_root>/images/00001.png
        <data_root>/labels/00001.png     Cityscapes label ids (palette PNG)

    ``label_format='train_ids'`` (default) reads
    ``labels/00001_labelTrainIds.png`` written by
    ``python tools/dataset_converters/dg_labels.py gta5 <data_root>``;
    ``label_format='raw'`` reads ``labels/00001.png`` with
    ``LoadMappedAnnotations`` (Cityscapes id -> train id). A split
    (``split.mat`` ids) can be given as an ``ann_file`` of names without
    suffix, one per line.
    """
    DEFAULT_PREFIX = dict(img_path='images', seg_map_path='labels')
    IMG_SUFFIX = '.png'
    TRAIN_ID_SUFFIX = '_labelTrainIds.png'
    RAW_SUFFIX = '.png'
    MAPPING = 'gta5'
