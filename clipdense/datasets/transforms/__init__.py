from .affordance import LoadAffordanceHeatmap, LoadReferringMask
from .anomaly import LoadAnomalyAnnotations, PackAnomalyInputs, PILAnomalyResize
from .formatting import PackCaptionInputs
from .label_mapping import LoadMappedAnnotations

__all__ = ['PackCaptionInputs', 'LoadReferringMask', 'LoadAffordanceHeatmap',
           'LoadMappedAnnotations', 'LoadAnomalyAnnotations', 'PackAnomalyInputs',
           'PILAnomalyResize']
