import json
import math

import pytest
import torch
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

from clipdense.registry import METRICS

CLASSES = ('a', 'b', 'c', 'd')


def sample(pred, gt):
    ds = SegDataSample()
    ds.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
    ds.gt_sem_seg = PixelData(data=torch.tensor(gt)[None])
    return ds.to_dict()


def evaluate(metric):
    metric.dataset_meta = dict(classes=CLASSES)
    gt = [[0, 0, 1, 1], [2, 2, 3, 3]]
    # a, b perfect; one pixel of c predicted as d: IoU(c) = 1/2 (1 of 2),
    # IoU(d) = 2/3 (2 pixels right, union 3)
    pred = [[0, 0, 1, 1], [2, 3, 3, 3]]
    metric.process([], [sample(pred, gt)])
    return metric.evaluate(1)


def test_seen_unseen_and_harmonic_mean():
    m = METRICS.build(dict(type='OpenVocabIoUMetric',
                           unseen_classes=['c', 'd']))
    res = evaluate(m)
    iou = [1.0, 1.0, 1 / 2, 2 / 3]
    assert res['mIoU'] == pytest.approx(100 * sum(iou) / 4, abs=0.01)
    assert res['mIoU_seen'] == pytest.approx(100.0)
    unseen = 100 * (1 / 2 + 2 / 3) / 2
    assert res['mIoU_unseen'] == pytest.approx(unseen, abs=0.01)
    assert res['hIoU'] == pytest.approx(2 * 100 * unseen / (100 + unseen),
                                        abs=0.01)


def test_split_file_and_bad_names(tmp_path):
    f = tmp_path / 'split.json'
    f.write_text(json.dumps({'unseen': ['d']}))
    res = evaluate(METRICS.build(dict(type='OpenVocabIoUMetric',
                                      split_file=str(f))))
    assert res['mIoU_unseen'] == pytest.approx(100 * 2 / 3, abs=0.01)
    assert not math.isnan(res['hIoU'])
    with pytest.raises(ValueError, match='not classes of the evaluated'):
        evaluate(METRICS.build(dict(type='OpenVocabIoUMetric',
                                    unseen_classes=['zebra'])))
    with pytest.raises(ValueError, match='exactly one'):
        METRICS.build(dict(type='OpenVocabIoUMetric'))
