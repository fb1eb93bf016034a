from .affordance import LoadAffordanceHeatmap, LoadReferringMask
from .caption import LoadCaptionSegMap, NounCaption, ObjectCropCaption
from .center_crop_frame import CenterCropFrame, paste_into_frame
from .anomaly import LoadAnomalyAnnotations, PackAnomalyInputs, PILAnomalyResize
from .formatting import PackCaptionInputs
from .label_mapping import LoadMappedAnnotations
from .random_resized_crop import CLIPRandomResizedCrop

__all__ = ['PackCaptionInputs', 'LoadReferringMask', 'LoadAffordanceHeatmap',
           'LoadMappedAnnotations', 'LoadAnomalyAnnotations', 'PackAnomalyInputs',
           'CLIPRandomResizedCrop',
           'CenterCropFrame', 'paste_into_frame',
           'PILAnomalyResize', 'NounCaption',
           'ObjectCropCaption', 'LoadCaptionSegMap']
