"""KLD / SIM / NSS (AGD20K protocol) on hand-computed cases."""
import math

import numpy as np
import pytest
import torch

from clipdense.evaluation.affordance_metric import (AffordanceMetric,
                                                    affordance_scores, kld,
                                                    nss, sim)

EPS = 1e-12


def test_identical_maps():
    rng = np.random.default_rng(0)
    g = rng.random((7, 5))
    assert kld(g, g) == pytest.approx(0.0, abs=1e-9)
    assert sim(g, g) == pytest.approx(1.0, abs=1e-9)
    # identical maps through the full protocol (min-max pred, GT / 255)
    minmax = (g - g.min()) / (g.max() - g.min())
    s = affordance_scores(minmax, minmax * 255)
    assert s['KLD'] == pytest.approx(0.0, abs=1e-6)
    assert s['SIM'] == pytest.approx(1.0, abs=1e-6)


def test_hand_computed_two_by_two():
    pred = np.array([[1.0, 0.0], [0.0, 0.0]])
    gt = np.array([[0.5, 0.5], [0.0, 0.0]])
    # p = [1, 0, 0, 0], g = [.5, .5, 0, 0]
    expected_kld = 0.5 * math.log(0.5 / (1 + EPS) + EPS) + \
        0.5 * math.log(0.5 / (0 + EPS) + EPS)
    assert kld(pred, gt) == pytest.approx(expected_kld, rel=1e-9)
    assert sim(pred, gt) == pytest.approx(0.5)
    # pred z-scores: mean .25, std sqrt(.1875); fixations: the top row
    z = (np.array([1.0, 0.0]) - 0.25) / math.sqrt(0.1875)
    assert nss(pred, gt) == pytest.approx(z.mean())
    assert nss(pred, gt) == pytest.approx(1 / math.sqrt(3))


def test_disjoint_maps_have_zero_similarity():
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert sim(a, b) == pytest.approx(0.0)
    assert kld(a, b) > 20  # log(1 / eps) scale
    assert nss(a, b) < 0


def test_fixations_threshold_at_a_tenth_of_the_gt_range():
    pred = np.array([[0.0, 1.0, 0.0, 0.0]])
    # 25/255 = 0.098 (not a fixation), 26/255 = 0.102 (a fixation)
    below = np.array([[255, 25, 0, 0]], dtype=np.uint8)
    above = np.array([[255, 26, 0, 0]], dtype=np.uint8)
    z = (np.array([0.0, 1.0, 0.0, 0.0]) - 0.25) / math.sqrt(0.1875)
    assert affordance_scores(pred, below)['NSS'] == pytest.approx(z[0])
    assert affordance_scores(pred, above)['NSS'] == pytest.approx((z[0] + z[1]) / 2)


def test_prediction_is_min_max_normalised():
    rng = np.random.default_rng(1)
    pred = rng.random((6, 6))
    gt = (rng.random((6, 6)) * 255).astype(np.uint8)
    a = affordance_scores(pred, gt)
    b = affordance_scores(pred * 7.0 - 3.0, gt)  # affine, same min-max map
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-9)
    # a better prediction (the GT itself) beats a random one on all three
    best = affordance_scores(gt.astype(float), gt)
    assert best['KLD'] < a['KLD'] and best['SIM'] > a['SIM'] and best['NSS'] > a['NSS']


def test_constant_prediction():
    gt = np.zeros((4, 4), np.uint8)
    gt[1, 1] = 255
    s = affordance_scores(np.full((4, 4), 3.0), gt)
    assert s['NSS'] == 0.0  # defined as 0 instead of the reference's NaN
    assert s['SIM'] == pytest.approx(0.0)


def test_bad_input():
    with pytest.raises(ValueError, match='differ in size'):
        kld(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match='non-negative'):
        sim(-np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match='NaN'):
        nss(np.full((2, 2), np.nan), np.ones((2, 2)))


def _sample(pred, gt, action):
    return {'pred_heatmap': {'data': torch.as_tensor(pred, dtype=torch.float32)[None]},
            'gt_sem_seg': {'data': torch.as_tensor(gt)[None]},
            'action': action}


def test_metric_resizes_and_averages():
    gt = np.zeros((8, 8), np.uint8)
    gt[:4, :4] = 255
    good = np.zeros((4, 4))
    good[:2, :2] = 1.0  # half-size prediction of the same map
    bad = 1.0 - good
    metric = AffordanceMetric(per_action=True)
    metric.dataset_meta = {}
    metric.process({}, [_sample(good, gt, 'hold'), _sample(bad, gt, 'cut')])
    out = metric.evaluate(2)
    # the 4x4 maps were resized (bilinear) to the 8x8 GT: near-perfect / poor
    assert out['agd20k/SIM/hold'] > 0.8 and out['agd20k/SIM/cut'] < 0.15
    assert out['agd20k/SIM'] == pytest.approx(
        (out['agd20k/SIM/hold'] + out['agd20k/SIM/cut']) / 2)
    assert out['agd20k/NSS/hold'] > 0 > out['agd20k/NSS/cut']
    assert out['agd20k/KLD/hold'] < out['agd20k/KLD/cut']


def test_metric_errors():
    metric = AffordanceMetric()
    with pytest.raises(KeyError, match='pred_heatmap'):
        metric.process({}, [{'gt_sem_seg': {'data': torch.zeros(1, 2, 2)}}])
    with pytest.raises(ValueError, match='no images'):
        metric.compute_metrics([])
