"""Anomaly metrics: scikit-learn agreement, a hand-computed AUPRO, the
per-class metric, bad input."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from sklearn.metrics import (average_precision_score, precision_recall_curve,
                             roc_auc_score)

from clipdense.evaluation import AnomalyMetric
from clipdense.evaluation.anomaly_metric import (aupro, auroc, average_precision,
                                                 f1_max, region_weights)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('ties', [False, True])
def test_auroc_ap_match_sklearn(seed, ties):
    rng = np.random.default_rng(seed)
    n = 2000
    y = rng.random(n) < 0.2
    s = rng.normal(size=n) + 0.8 * y
    if ties:
        s = np.round(s, 1)  # many tied scores
    assert auroc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    p, r, _ = precision_recall_curve(y, s)
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    assert f1_max(s, y) == pytest.approx(f1.max(), abs=1e-12)


def test_perfect_and_inverted_scores():
    y = np.array([0, 0, 1, 1])
    assert auroc([0.1, 0.2, 0.8, 0.9], y) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], y) == 0.0
    assert average_precision([0.1, 0.2, 0.8, 0.9], y) == 1.0
    assert f1_max([0.1, 0.2, 0.8, 0.9], y) == 1.0


def test_aupro_hand_computed():
    # one 1x4 image: pixels 0,1 form region A (2 px), pixel 3 is normal,
    # pixel 2 is normal; a second image has region B = one pixel.
    maps = np.array([[[0.9, 0.5, 0.7, 0.1]], [[0.6, 0.0, 0.0, 0.0]]])
    masks = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]]], dtype=bool)
    # normals: 0.7, 0.1 (img 0) and 0, 0, 0 (img 1): 5 normal pixels
    # thresholds (descending): 0.9 -> PRO (1/2 + 0)/2 = 0.25, FPR 0
    # 0.7 -> FPR 1/5 = 0.2, PRO 0.25; 0.6 -> PRO (0.5 + 1)/2 = 0.75, FPR 0.2
    # 0.5 -> PRO 1.0, FPR 0.2; then 0.1 -> FPR 0.4 (beyond 0.3)
    # curve: (0,0) -> (0,0.25) -> (0.2,0.25) -> (0.2,0.75) -> (0.2,1.0)
    #        -> (0.4,1.0) cut at 0.3 -> (0.3,1.0)
    # area = 0.2*0.25 + 0.1*1.0 = 0.15; / 0.3 = 0.5
    assert aupro(maps, masks, max_fpr=0.3) == pytest.approx(0.5)
    # up to FPR 1: 0.2*0.25 + 0.8*1.0 = 0.85
    assert aupro(maps, masks, max_fpr=1.0) == pytest.approx(0.85)


def test_region_weights_use_8_connectivity():
    m = np.zeros((1, 4, 4), bool)
    m[0, 0, 0] = m[0, 1, 1] = True  # diagonal neighbours: one region
    m[0, 3, 3] = True                # a second region
    w = region_weights(m)
    assert w[0, 0, 0] == pytest.approx(0.25) and w[0, 1, 1] == pytest.approx(0.25)
    assert w[0, 3, 3] == pytest.approx(0.5)
    assert w.sum() == pytest.approx(1.0)


def test_perfect_maps_give_aupro_one():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 8, 8)) < 0.2
    assert aupro(masks.astype(float), masks) == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(ValueError, match='both normal and anomalous'):
        auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match='differ in size'):
        auroc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match='NaN'):
        auroc([0.1, float('nan')], [0, 1])
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        aupro(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match='unknown metrics'):
        AnomalyMetric(metrics=['pixel_iou'])


def _sample(cat, amap, mask, score, label):
    ds = SegDataSample(metainfo=dict(category=cat, anomaly=label))
    ds.pred_anomaly_map = PixelData(data=torch.as_tensor(amap, dtype=torch.float32)[None])
    ds.gt_sem_seg = PixelData(data=torch.as_tensor(mask, dtype=torch.uint8)[None])
    ds.set_field(torch.tensor(score), 'pred_score')
    return ds.to_dict()


def test_metric_per_class_and_mean():
    rng = np.random.default_rng(0)
    metric = AnomalyMetric()
    metric.dataset_meta = dict(classes=('normal', 'anomaly'))
    truth = {}
    for cat, quality in (('bottle', 1.0), ('wood', 0.2)):
        maps, masks, scores, labels = [], [], [], []
        for i in range(6):
            mask = np.zeros((8, 8), np.uint8)
            label = int(i % 2 == 1)
            if label:
                mask[2:5, 2:5] = 1
            amap = rng.random((8, 8)) * (1 - quality) + quality * mask
            score = float(label * quality + rng.random() * (1 - quality))
            metric.process({}, [_sample(cat, amap, mask, score, label)])
            maps.append(amap)
            masks.append(mask)
            scores.append(score)
            labels.append(label)
        truth[cat] = dict(
            pixel_auroc=roc_auc_score(np.ravel(masks), np.ravel(maps)),
            image_auroc=roc_auc_score(labels, scores))
    res = metric.compute_metrics(metric.results)
    for cat in truth:
        for k, v in truth[cat].items():
            assert res[f'{cat}/{k}'] == pytest.approx(100 * v)
    assert res['pixel_auroc'] == pytest.approx(
        50 * (truth['bottle']['pixel_auroc'] + truth['wood']['pixel_auroc']))
    assert res['bottle/aupro'] == pytest.approx(100.0)
    assert res['wood/aupro'] < 100.0


def test_metric_needs_category_and_masks():
    metric = AnomalyMetric()
    ds = SegDataSample(metainfo=dict(anomaly=0))
    ds.pred_anomaly_map = PixelData(data=torch.zeros(1, 4, 4))
    ds.set_field(torch.tensor(0.5), 'pred_score')
    with pytest.raises(KeyError, match='category'):
        metric.process({}, [ds.to_dict()])
    ds.set_metainfo(dict(category='x'))
    with pytest.raises(KeyError, match='LoadAnomalyAnnotations'):
        metric.process({}, [ds.to_dict()])
