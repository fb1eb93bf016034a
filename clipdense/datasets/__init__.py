"""Dataset classes (registered in :data:`clipdense.registry.DATASETS`) and
the embedded synthetic world generator (:mod:`.synthetic`)."""
from . import transforms  # noqa: F401
from .agd20k import AGD20KDataset
from .caption_dataset import CaptionDataset
from .mvtec_ad import MVTecADDataset
from .refer_seg import RefSegDataset, decode_segmentation
from .synthetic import generate_world
from .synthetic_coco import SyntheticCocoDataset
from .synthetic_seg import SyntheticSegDataset

__all__ = [
    'SyntheticSegDataset', 'SyntheticCocoDataset', 'MVTecADDataset',
    'AGD20KDataset', 'RefSegDataset', 'CaptionDataset', 'decode_segmentation',
    'generate_world'
]
