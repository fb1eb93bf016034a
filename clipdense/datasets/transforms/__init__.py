from .affordance import LoadAffordanceHeatmap, LoadReferringMask
from .anomaly import LoadAnomalyAnnotations, PackAnomalyInputs
from .formatting import PackCaptionInputs
from .label_mapping import LoadMappedAnnotations
from .random_resized_crop import CLIPRandomResizedCrop

__all__ = ['PackCaptionInputs', 'LoadReferringMask', 'LoadAffordanceHeatmap',
           'LoadMappedAnnotations', 'LoadAnomalyAnnotations', 'PackAnomalyInputs',
           'CLIPRandomResizedCrop']
