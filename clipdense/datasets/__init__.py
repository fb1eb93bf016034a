"""Dataset classes (registered in :data:`clipdense.registry.DATASETS`) and
the embedded synthetic world generator (:mod:`.synthetic`)."""
from . import transforms  # noqa: F401
from .acdc import ACDCDataset
from .agd20k import AGD20KDataset
from .caption_dataset import CaptionDataset
from .class_list_seg import ClassListSegDataset
from .dg_seg import DGSegDataset
from .gta5 import GTA5Dataset
from .mapillary_cityscapes import MapillaryCityscapesDataset
from .mvtec_ad import MVTecADDataset
from .refer_seg import RefSegDataset, decode_segmentation
from .synthetic import generate_world
from .synthetic_coco import SyntheticCocoDataset
from .synthetic_seg import SyntheticSegDataset
from .synthia import SynthiaDataset
from .visa import VisADataset

__all__ = [
    'SyntheticSegDataset', 'SyntheticCocoDataset', 'MVTecADDataset',
    'AGD20KDataset', 'ClassListSegDataset', 'RefSegDataset', 'CaptionDataset', 'decode_segmentation',
    'generate_world', 'DGSegDataset', 'GTA5Dataset', 'SynthiaDataset',
    'ACDCDataset', 'MapillaryCityscapesDataset', 'VisADataset'
]
