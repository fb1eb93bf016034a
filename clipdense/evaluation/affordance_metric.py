"""KLD, SIM and NSS of affordance heat maps, as the AGD20K protocol
computes them (Luo et al., "Learning Affordance Grounding from Exocentric
Images", CVPR 2022; the reference evaluation code of Cross-View-AG and
LOCATE; methods.md Part B 4.3).

Per image, with the prediction resized (bilinear) to the GT size and
min-max normalised to [0, 1], and the GT divided by 255:

* KLD = sum g * log(g / (p + eps) + eps), with p and g each divided by
  its sum (+ eps); lower is better; 0 for identical maps.
* SIM = sum min(p, g) over the sum-normalised maps; higher is better; 1
  for identical maps.
* NSS = mean over the GT "fixations" of the z-scored prediction, the
  fixations being the pixels where the min-max normalised GT exceeds 0.1;
  higher is better.

The dataset value is the mean over images. ``eps = 1e-12`` as in the
reference code. Constant predictions are as the reference code leaves
them: min-max gives all zeros (KLD large, SIM 0), and NSS divides by a
zero standard deviation; here NSS of a constant map is defined as 0 (no
pixel stands out) instead of NaN.
"""
from collections import defaultdict
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from clipdense.registry import METRICS

EPS = 1e-12


def minmax_normalize(x: np.ndarray) -> np.ndarray:
    """``(x - min) / (max - min + eps)`` as float64."""
    x = np.asarray(x, dtype=np.float64)
    return (x - x.min()) / (x.max() - x.min() + EPS)


def _check_pair(pred, gt):
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction {pred.shape} and GT {gt.shape} differ in size; '
                         'resize the prediction to the GT first')
    if not (np.isfinite(pred).all() and np.isfinite(gt).all()):
        raise ValueError('heat maps contain NaN or inf')
    if (pred < 0).any() or (gt < 0).any():
        raise ValueError('heat maps must be non-negative (min-max normalise the '
                         'prediction, divide the GT by 255)')
    return pred, gt


def kld(pred: np.ndarray, gt: np.ndarray, eps: float = EPS) -> float:
    """KL divergence of the GT from the prediction (both sum-normalised)."""
    pred, gt = _check_pair(pred, gt)
    p = pred / (pred.sum() + eps)
    g = gt / (gt.sum() + eps)
    return float(np.sum(g * np.log(g / (p + eps) + eps)))


def sim(pred: np.ndarray, gt: np.ndarray, eps: float = EPS) -> float:
    """Histogram intersection of the sum-normalised maps."""
    pred, gt = _check_pair(pred, gt)
    p = pred / (pred.sum() + eps)
    g = gt / (gt.sum() + eps)
    return float(np.minimum(p, g).sum())


def nss(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.1) -> float:
    """Mean z-scored prediction over the fixations (min-max GT > 0.1).

    The reference code divides both maps by 255 first; that changes neither
    the z-score nor the min-max normalised fixations, so it is left out.
    """
    pred, gt = _check_pair(pred, gt)
    std = pred.std()
    fix = minmax_normalize(gt) > threshold
    if std == 0:
        return 0.0
    z = (pred - pred.mean()) / std
    return float((z * fix).sum() / (fix.sum() + EPS))


def affordance_scores(pred: np.ndarray, gt_uint8: np.ndarray) -> Dict[str, float]:
    """The three metrics of one image under the AGD20K protocol.

    Args:
        pred (ndarray): ``(H, W)`` raw heat map at the GT size (any range).
        gt_uint8 (ndarray): ``(H, W)`` GT heat map, 0..255.

    Returns:
        dict: ``KLD``, ``SIM``, ``NSS``.
    """
    p = minmax_normalize(pred)
    g = np.asarray(gt_uint8, dtype=np.float64) / 255.0
    return {'KLD': kld(p, g), 'SIM': sim(p, g), 'NSS': nss(p, g)}


@METRICS.register_module()
class AffordanceMetric(BaseMetric):
    """KLD / SIM / NSS over a dataset of heat maps (AGD20K protocol).

    Reads, per data sample, the prediction ``pred_key`` (default
    ``'pred_heatmap'``, ``(1, H', W')``) and the GT ``gt_sem_seg``
    (``(1, H, W)``, 0..255, as :class:`LoadAffordanceHeatmap` packs it).
    The prediction is resized bilinearly to the GT size when they differ,
    then scored by :func:`affordance_scores`.

    Args:
        pred_key (str): data-sample key of the predicted map.
        per_action (bool): also report each metric per action (the
            sample's ``action`` metainfo), as ``KLD/<action>`` etc.
        collect_device (str): 'cpu' or 'gpu' (MMEngine).
        prefix (str, optional): metric-name prefix (default ``'agd20k'``:
            ``agd20k/KLD`` ...).
    """
    default_prefix: Optional[str] = 'agd20k'

    def __init__(self, pred_key: str = 'pred_heatmap', per_action: bool = False,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.pred_key = pred_key
        self.per_action = bool(per_action)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        import torch
        import torch.nn.functional as F
        for i, ds in enumerate(data_samples):
            if self.pred_key not in ds:
                raise KeyError(f"AffordanceMetric: no '{self.pred_key}' in the "
                               'prediction (an AffordanceCLIP model writes '
                               "'pred_heatmap')")
            if 'gt_sem_seg' not in ds:
                raise KeyError('AffordanceMetric: no gt_sem_seg; load the GT with '
                               'LoadAffordanceHeatmap in the test pipeline')
            pred = ds[self.pred_key]['data']
            gt = ds['gt_sem_seg']['data']
            pred = pred[:1].float()
            gt = gt.squeeze(0).cpu().numpy()
            if tuple(pred.shape[-2:]) != gt.shape:
                pred = F.interpolate(pred[None], size=gt.shape, mode='bilinear',
                                     align_corners=False)[0]
            with torch.no_grad():
                p = pred[0].cpu().numpy()
            res = affordance_scores(p, gt)
            res['action'] = ds.get('action', ds.get('metainfo', {}).get('action'))
            self.results.append(res)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        if not results:
            raise ValueError('AffordanceMetric: no images were evaluated')
        out = {k: float(np.mean([r[k] for r in results]))
               for k in ('KLD', 'SIM', 'NSS')}
        if self.per_action:
            groups = defaultdict(list)
            for r in results:
                groups[r['action']].append(r)
            for a, rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
                for k in ('KLD', 'SIM', 'NSS'):
                    out[f'{k}/{a}'] = float(np.mean([r[k] for r in rs]))
        logger.info(f"AGD20K metrics over {len(results)} images: "
                    f"KLD {out['KLD']:.3f}  SIM {out['SIM']:.3f}  NSS {out['NSS']:.3f}")
        return out
