"""mmseg's IoUMetric that also returns the per-class IoU/Acc."""
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from mmseg.evaluation import IoUMetric

from clipdense.registry import METRICS


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """``IoUMetric`` whose results also hold ``IoU.<class>`` and
    ``Acc.<class>`` (in %, ``nan`` for a class with no pixels in the ground
    truth nor the prediction), so that a tool can put per-class numbers in
    its JSON (``tools/analysis_tools/dg_benchmark.py``). The summary
    (``aAcc``, ``mIoU``, ``mAcc``) is mmseg's, unchanged.

    Args:
        See ``mmseg.evaluation.IoUMetric``.
    """

    def compute_metrics(self, results: List) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only or not results:
            return metrics
        cols = tuple(zip(*results))
        totals = [sum(c) for c in cols]
        per_class = self.total_area_to_metrics(
            *totals, ['mIoU'], self.nan_to_num, self.beta)
        classes = self.dataset_meta['classes']
        out = OrderedDict(metrics)
        for key in ('IoU', 'Acc'):
            values = np.asarray(per_class[key], dtype=np.float64) * 100
            for name, v in zip(classes, values):
                out[f'{key}.{name}'] = float(np.round(v, 2))
        return out
