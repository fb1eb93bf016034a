"""mIoU over seen and unseen classes and their harmonic mean.

The zero-shot segmentation protocol (Xian et al., "Semantic Projection
Network for Zero- and Few-Label Semantic Segmentation", CVPR 2019; used by
ZegCLIP, MaskCLIP+ and OVSeg's cross-dataset tables): besides the mIoU over
all classes, report mIoU(S) over the classes seen in training, mIoU(U) over
the unseen ones and hIoU = 2 S U / (S + U).
"""
import json
from typing import Dict, Optional, Sequence

import numpy as np
from mmseg.evaluation import IoUMetric

from clipdense.registry import METRICS


@METRICS.register_module()
class OpenVocabIoUMetric(IoUMetric):
    """:class:`mmseg.evaluation.IoUMetric` plus ``mIoU_seen``,
    ``mIoU_unseen`` and ``hIoU`` (percent).

    Args:
        unseen_classes (Sequence[str], optional): class names not seen in
            training; every other class of the dataset counts as seen.
        split_file (str, optional): a JSON file with an ``"unseen"`` list of
            class names (the synthetic world's ``open_vocab_split.json``
            has this format). Give this or ``unseen_classes``.
        **kwargs: the arguments of ``IoUMetric``.
    """

    def __init__(self,
                 unseen_classes: Optional[Sequence[str]] = None,
                 split_file: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if (unseen_classes is None) == (split_file is None):
            raise ValueError('OpenVocabIoUMetric needs exactly one of '
                             'unseen_classes and split_file')
        if split_file is not None:
            with open(split_file) as f:
                unseen_classes = json.load(f)['unseen']
        if not unseen_classes:
            raise ValueError('the unseen class list is empty')
        self.unseen_classes = list(unseen_classes)

    def _split_indices(self):
        names = list(self.dataset_meta['classes'])
        missing = [c for c in self.unseen_classes if c not in names]
        if missing:
            raise ValueError(f'unseen classes {missing} are not classes of '
                             f'the evaluated dataset ({names})')
        unseen = [names.index(c) for c in self.unseen_classes]
        seen = [i for i in range(len(names)) if i not in unseen]
        return seen, unseen

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        seen, unseen = self._split_indices()
        inter = sum(r[0] for r in results).numpy().astype(np.float64)
        union = sum(r[1] for r in results).numpy().astype(np.float64)
        with np.errstate(invalid='ignore', divide='ignore'):
            iou = inter / union  # nan where a class is absent everywhere
        m_seen = float(np.nanmean(iou[seen]) * 100) if seen else float('nan')
        m_unseen = float(np.nanmean(iou[unseen]) * 100)
        h = 2 * m_seen * m_unseen / (m_seen + m_unseen) \
            if m_seen + m_unseen > 0 else 0.0
        metrics.update(mIoU_seen=round(m_seen, 2),
                       mIoU_unseen=round(m_unseen, 2), hIoU=round(h, 2))
        return metrics
