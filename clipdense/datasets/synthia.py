"""SYNTHIA RAND-CITYSCAPES (Ros et al., CVPR 2016) in the 19-class
Cityscapes label space."""
from clipdense.registry import DATASETS
from .cityscapes_labels import SYNTHIA_16_CLASSES
from .dg_seg import DGSegDataset


@DATASETS.register_module()
class SynthiaDataset(DGSegDataset):
    """SYNTHIA RAND-CITYSCAPES (9,400 images), a synthetic DG source. Layout
    of the download::

        <data_root>/RGB/0000000.png
        <data_root>/GT/LABELS/0000000.png   16-bit, 3 channels; class id in R

    ``label_format='train_ids'`` (default) reads
    ``GT/LABELS/0000000_labelTrainIds.png`` written by
    ``python tools/dataset_converters/dg_labels.py synthia <data_root>``;
    ``label_format='raw'`` reads the 16-bit files with
    ``LoadMappedAnnotations``. The labels use the 19 Cityscapes classes;
    terrain, truck and train have (almost) no pixels, and results are often
    reported over the other 16 (:data:`SYNTHIA_16_CLASSES`).
    """
    DEFAULT_PREFIX = dict(img_path='RGB', seg_map_path='GT/LABELS')
    IMG_SUFFIX = '.png'
    TRAIN_ID_SUFFIX = '_labelTrainIds.png'
    RAW_SUFFIX = '.png'
    MAPPING = 'synthia'
    CLASSES_16 = SYNTHIA_16_CLASSES
