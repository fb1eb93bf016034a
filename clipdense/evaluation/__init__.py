from .open_vocab_iou import OpenVocabIoUMetric

__all__ = ['OpenVocabIoUMetric']
