"""Region classifiers: CLIP on masked crops (OVSeg)."""
from .masked_crop_clip import (CLIP_MEAN, CLIP_STD, MaskedCropCLIP,
                               crop_with_masks, mask_boxes, patch_keep_mask)

__all__ = ['MaskedCropCLIP', 'crop_with_masks', 'mask_boxes', 'patch_keep_mask',
           'CLIP_MEAN', 'CLIP_STD']
