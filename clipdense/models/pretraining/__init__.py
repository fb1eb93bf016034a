from .contrastive_clip import ContrastiveCLIP, export_open_clip_state_dict
from .mask_adapted_clip import (OVSEG_STORED_FILL, MaskAdaptedCLIP,
                                MaskPromptCLIP, deduplicated_clip_loss,
                                mask_adapted_clip_config,
                                masks_from_filled_crops, store_crop_with_fill)

__all__ = ['ContrastiveCLIP', 'export_open_clip_state_dict', 'MaskPromptCLIP',
           'MaskAdaptedCLIP', 'deduplicated_clip_loss',
           'mask_adapted_clip_config', 'masks_from_filled_crops',
           'store_crop_with_fill', 'OVSEG_STORED_FILL']
