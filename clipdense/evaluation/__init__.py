from .affordance_metric import AffordanceMetric
from .anomaly_metric import AnomalyMetric
from .open_vocab_iou import OpenVocabIoUMetric
from .per_class_iou import PerClassIoUMetric

__all__ = ['OpenVocabIoUMetric', 'AffordanceMetric', 'PerClassIoUMetric',
           'AnomalyMetric']
