"""Anomaly detection and localisation metrics (MVTec AD / VisA protocol).

Per class (object category), then the mean over classes, as the zero-shot
anomaly papers report them (WinCLIP, Jeong et al., CVPR 2023; AnoVL, Deng
et al., 2023, Sec. 4):

* pixel level: AUROC, AP, F1-max, AUPRO (per-region overlap integrated up to
  a false-positive rate of 0.3 and divided by 0.3; Bergmann et al., "The
  MVTec Anomaly Detection Dataset", IJCV 2021);
* image level: AUROC, AP, F1-max.

Everything is computed from one sort of the scores (vectorised numpy); ties
are grouped, so AUROC and AP equal scikit-learn's ``roc_auc_score`` and
``average_precision_score``. Connected regions of the ground truth come from
``scipy.ndimage.label`` (8-connectivity, as the MVTec AD evaluation code).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from clipdense.registry import METRICS

ALL_METRICS = ('pixel_auroc', 'pixel_ap', 'pixel_f1_max', 'aupro',
               'image_auroc', 'image_ap', 'image_f1_max')


def _as_1d(x, name):
    a = np.asarray(x).reshape(-1)
    if a.size == 0:
        raise ValueError(f'{name} is empty')
    return a


def binary_curve(scores, labels, weights=None):
    """Cumulative positives/negatives above each distinct threshold.

    Args:
        scores (array): ``(N,)`` scores, higher = more anomalous.
        labels (array): ``(N,)`` 0/1 (bool) ground truth.
        weights (array, optional): ``(N,)`` weights of the positives (the
            AUPRO region weights); negatives always count 1.

    Returns:
        tuple[ndarray, ndarray, ndarray]: ``tp``, ``fp`` (cumulative, one
        entry per distinct score in decreasing order) and those thresholds.
    """
    s = _as_1d(scores, 'scores').astype(np.float64)
    y = _as_1d(labels, 'labels').astype(bool)
    if s.shape != y.shape:
        raise ValueError(f'scores {s.shape} and labels {y.shape} differ in size')
    if not np.isfinite(s).all():
        raise ValueError('scores contain NaN or inf')
    order = np.argsort(-s, kind='mergesort')
    s, y = s[order], y[order]
    w = y.astype(np.float64) if weights is None else \
        np.where(y, _as_1d(weights, 'weights')[order], 0.0)
    tp = np.cumsum(w)
    fp = np.cumsum(~y, dtype=np.float64)
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # end of each tie group
    return tp[last], fp[last], s[last]


def _check_both(labels, what):
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        raise ValueError(f'{what} needs both normal and anomalous samples '
                         f'(got {int(y.sum())} anomalous of {y.size})')


def auroc(scores, labels) -> float:
    """Area under the ROC curve (trapezoid over distinct thresholds)."""
    _check_both(labels, 'AUROC')
    tp, fp, _ = binary_curve(scores, labels)
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return float(np.trapezoid(tpr, fpr))


def average_precision(scores, labels) -> float:
    """AP = sum_n (R_n - R_{n-1}) P_n (scikit-learn's definition)."""
    _check_both(labels, 'AP')
    tp, fp, _ = binary_curve(scores, labels)
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def f1_max(scores, labels) -> float:
    """Best F1 over all thresholds."""
    _check_both(labels, 'F1-max')
    tp, fp, _ = binary_curve(scores, labels)
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(f1.max())


def region_weights(masks: np.ndarray) -> np.ndarray:
    """Per-pixel AUPRO weights: ``1 / (R * |region|)`` for the pixels of
    each of the ``R`` connected ground-truth regions (8-connectivity) of
    all images, 0 elsewhere; the weights of the anomalous pixels above a
    threshold then sum to the mean per-region overlap (PRO).

    Args:
        masks (ndarray): ``(N, H, W)`` boolean ground truth.

    Returns:
        ndarray: ``(N, H, W)`` float64 weights.
    """
    from scipy import ndimage
    structure = np.ones((3, 3), dtype=bool)
    weights = np.zeros(masks.shape, dtype=np.float64)
    sizes_all = []
    labels_all = []
    for i, m in enumerate(masks):
        lab, n = ndimage.label(m, structure=structure)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        labels_all.append((i, lab))
        sizes_all.append(sizes)
    n_regions = sum(len(s) for s in sizes_all)
    for (i, lab), sizes in zip(labels_all, sizes_all):
        per = np.r_[0.0, 1.0 / (n_regions * sizes)]
        weights[i] = per[lab]
    return weights


def aupro(maps, masks, max_fpr: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``max_fpr``,
    normalised by ``max_fpr`` (1.0 = perfect).

    The PRO curve is exact (every distinct score is a threshold); the last
    segment is interpolated linearly at ``max_fpr``.

    Args:
        maps (ndarray): ``(N, H, W)`` anomaly maps.
        masks (ndarray): ``(N, H, W)`` ground truth (bool / 0-1).
        max_fpr (float): integration limit on the false-positive rate.
    """
    maps = np.asarray(maps)
    masks = np.asarray(masks).astype(bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise ValueError(f'maps {maps.shape} and masks {masks.shape} must both be '
                         '(N, H, W)')
    if not 0 < max_fpr <= 1:
        raise ValueError(f'max_fpr must be in (0, 1], got {max_fpr}')
    _check_both(masks, 'AUPRO')
    w = region_weights(masks)
    pro, fp, _ = binary_curve(maps, masks, weights=w)
    fpr = np.r_[0.0, fp / fp[-1]]
    pro = np.r_[0.0, pro]
    # cut at max_fpr, interpolating the segment that crosses it
    k = int(np.searchsorted(fpr, max_fpr, side='right'))
    if k < fpr.size:
        f0, f1, p0, p1 = fpr[k - 1], fpr[k], pro[k - 1], pro[k]
        p_cut = p0 + (p1 - p0) * (max_fpr - f0) / (f1 - f0)
        fpr = np.r_[fpr[:k], max_fpr]
        pro = np.r_[pro[:k], p_cut]
    return float(np.trapezoid(pro, fpr) / max_fpr)


def anomaly_metrics(maps: Optional[np.ndarray], masks: Optional[np.ndarray],
                    img_scores: Optional[np.ndarray], img_labels: Optional[np.ndarray],
                    metrics: Sequence[str] = ALL_METRICS,
                    max_fpr: float = 0.3) -> Dict[str, float]:
    """All requested metrics of one class, in [0, 1]. Metrics whose ground
    truth has a single class (e.g. pixel metrics of a class whose test set
    has no anomalous pixel) are NaN."""
    out = {}
    # '<level>_<score>': the level picks the (scores, labels), the rest the scorer
    levels = {'pixel': (maps, masks), 'image': (img_scores, img_labels)}
    scorers = {'auroc': auroc, 'ap': average_precision, 'f1_max': f1_max}
    for name in metrics:
        level, _, score = name.partition('_')
        try:
            if name == 'aupro':
                out[name] = aupro(maps, masks, max_fpr)
            elif level in levels and score in scorers:
                out[name] = scorers[score](*levels[level])
        except ValueError as e:
            if 'needs both' not in str(e):
                raise
            out[name] = float('nan')
    return out


@METRICS.register_module()
class AnomalyMetric(BaseMetric):
    """Zero-shot anomaly detection / localisation metrics per class and
    their mean (percent).

    Reads from each data sample: ``pred_anomaly_map`` (``PixelData``,
    ``(1, H, W)`` anomaly probability), ``pred_score`` (image score),
    ``gt_sem_seg`` (``(1, H, W)`` 0/1 mask at the same size: the anomaly
    pipelines resize image and mask together), and the metainfo
    ``anomaly`` (0/1) and ``category`` (or ``cls_name``).

    Args:
        metrics (Sequence[str]): any of :data:`ALL_METRICS`.
        max_fpr (float): AUPRO integration limit (0.3 in the papers).
        map_size (int, optional): resize maps and masks to this side before
            storing them (bilinear / nearest) to bound the memory of large
            test sets; None keeps the model's size.
        collect_device, prefix: see ``mmengine.evaluator.BaseMetric``.

    Returns (from ``evaluate``): ``{metric}`` (mean over classes) and
    ``{category}/{metric}`` entries, in percent.
    """
    default_prefix = ''

    def __init__(self, metrics: Sequence[str] = ALL_METRICS, *,
                 max_fpr: float = 0.3, map_size: Optional[int] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
        bad = [m for m in metrics if m not in ALL_METRICS]
        if bad or not metrics:
            raise ValueError(f'AnomalyMetric: unknown metrics {bad}; choose from '
                             f'{ALL_METRICS}')
        self.metrics = metrics
        self.max_fpr = float(max_fpr)
        self.map_size = map_size

    def _pixel_needed(self):
        return any(m in self.metrics for m in ALL_METRICS[:4])

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        import torch.nn.functional as F
        for ds in data_samples:
            if 'pred_score' not in ds:
                raise KeyError('AnomalyMetric needs pred_score in the predictions '
                               '(use an anomaly detector such as AnoVLDetector)')
            cat = ds.get('category', ds.get('cls_name'))
            if cat is None:
                raise KeyError("AnomalyMetric needs 'category' (or 'cls_name') in the "
                               'data sample metainfo (set by MVTecADDataset/VisADataset)')
            label = ds.get('anomaly')
            amap = mask = None
            if self._pixel_needed():
                if 'gt_sem_seg' not in ds:
                    raise KeyError('pixel metrics need gt_sem_seg: add '
                                   "dict(type='LoadAnomalyAnnotations') to the pipeline")
                amap = ds['pred_anomaly_map']['data'].float()
                mask = ds['gt_sem_seg']['data'].float()
                if amap.shape[-2:] != mask.shape[-2:]:
                    amap = F.interpolate(amap[None], size=mask.shape[-2:],
                                         mode='bilinear', align_corners=False)[0]
                if self.map_size is not None:
                    size = (self.map_size, self.map_size)
                    amap = F.interpolate(amap[None], size=size, mode='bilinear',
                                         align_corners=False)[0]
                    mask = F.interpolate(mask[None], size=size, mode='nearest')[0]
                amap = amap[0].cpu().numpy().astype(np.float32)
                mask = (mask[0] > 0.5).cpu().numpy()
                if label is None:
                    label = int(mask.any())
            if label is None:
                raise KeyError("AnomalyMetric needs the 'anomaly' label in the metainfo")
            self.results.append(dict(category=str(cat), map=amap, mask=mask,
                                     score=float(ds['pred_score']),
                                     label=int(label)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        by_cat: 'OrderedDict[str, list]' = OrderedDict()
        for r in results:
            by_cat.setdefault(r['category'], []).append(r)
        table = OrderedDict()
        for cat, rs in by_cat.items():
            maps = masks = None
            if self._pixel_needed():
                maps = np.stack([r['map'] for r in rs])
                masks = np.stack([r['mask'] for r in rs])
            scores = np.array([r['score'] for r in rs])
            labels = np.array([r['label'] for r in rs])
            table[cat] = anomaly_metrics(maps, masks, scores, labels,
                                         self.metrics, self.max_fpr)
        out = OrderedDict()
        for m in self.metrics:
            vals = [t[m] for t in table.values() if not np.isnan(t[m])]
            out[m] = float(100 * np.mean(vals)) if vals else float('nan')
        for cat, t in table.items():
            for m in self.metrics:
                out[f'{cat}/{m}'] = float(100 * t[m])
        lines = ['per-class anomaly metrics (%):',
                 'class'.ljust(16) + ''.join(m.rjust(14) for m in self.metrics)]
        for cat, t in table.items():
            lines.append(cat.ljust(16) + ''.join(f'{100 * t[m]:14.2f}' for m in self.metrics))
        lines.append('mean'.ljust(16) + ''.join(f'{out[m]:14.2f}' for m in self.metrics))
        print_log('\n'.join(lines), logger=logger)
        return dict(out)
