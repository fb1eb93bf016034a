from .affordance_head import AffordanceHead
from .anovl_head import AnoVLHead
from .maskclip_head import MaskCLIPHead
from .ovseg_head import OVSegHead, TextEmbeddingClassifier, ovseg_ensemble
from .pixel_text_identity_head import PixelTextIdentityHead
from .training_free_head import TrainingFreeError, TrainingFreeHead
from .vltseg_mask2former_head import VLTSegMask2FormerHead

__all__ = ['AffordanceHead', 'MaskCLIPHead', 'OVSegHead',
           'TextEmbeddingClassifier', 'ovseg_ensemble', 'VLTSegMask2FormerHead',
           'PixelTextIdentityHead', 'AnoVLHead', 'TrainingFreeHead', 'TrainingFreeError']
