"""tools/analysis_tools/dg_benchmark.py on a tiny synthetic world with a
tiny checkpoint, and the per-class IoU metric it relies on."""
import csv
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from clipdense.datasets.synthetic.spec import CLASSES
from clipdense.registry import METRICS, MODELS
from clipdense.testing.runs import ROOT

CONFIG = osp.join(ROOT, 'configs/vltseg/'
                  'vltseg_synth-rn-scratch_1xb4-300_synthetic-flat-128x128.py')
STYLES = ('flat', 'textured', 'night', 'fog')


def _load_tool():
    path = osp.join(ROOT, 'tools/analysis_tools/dg_benchmark.py')
    spec = importlib.util.spec_from_file_location('dg_benchmark_tool', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def world4(tmp_path_factory):
    from clipdense.datasets.synthetic import generate_world
    out = tmp_path_factory.mktemp('dgworld') / 'synthetic'
    generate_world(str(out), seed=0, size=64, num_train=2, num_val=3,
                   styles=STYLES, parts=('seg', ), progress=False)
    return str(out)


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    cfg = Config.fromfile(CONFIG)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def test_dg_benchmark_writes_the_table(world4, tiny_ckpt, tmp_path):
    tool = _load_tool()
    out = tmp_path / 'out'
    argv = [CONFIG, tiny_ckpt, '--data-root', world4, '--out-dir', str(out),
            '--work-dir', str(tmp_path / 'wd')]
    report = tool.main(argv)
    # the synthetic default: the source and every target style
    assert list(report['targets']) == list(STYLES)
    assert report['targets']['flat']['role'] == 'source'
    assert report['targets_in_mean'] == ['textured', 'night', 'fog']
    mean = np.mean([report['targets'][s]['mIoU'] for s in STYLES[1:]])
    assert report['target_mean_mIoU'] == pytest.approx(mean)
    for s in STYLES:
        r = report['targets'][s]
        assert r['num_images'] == 3
        assert 0 <= r['mIoU'] <= 100
        assert list(r['per_class_iou']) == list(CLASSES)
    md = (out / 'dg_benchmark.md').read_text()
    assert 'Command: `python tools/analysis_tools/dg_benchmark.py' in md
    assert '--data-root' in md
    for s in STYLES:
        assert f'| {s} |' in md
    assert '| flat | source |' in md and 'mean over targets' in md
    rows = list(csv.reader((out / 'dg_benchmark.csv').open()))
    assert rows[0] == ['target', 'role', 'mIoU', 'mAcc', 'aAcc', 'images']
    assert [r[0] for r in rows[1:]] == list(STYLES) + ['mean_targets']
    assert float(rows[-1][2]) == pytest.approx(mean, abs=0.006)
    data = json.loads((out / 'dg_benchmark.json').read_text())
    assert data['command'].startswith('python tools/analysis_tools/dg_benchmark.py')
    assert len(data['targets']['night']['per_class_iou']) == 13

    # a subset of targets, in the given order; the source is then not used
    sub = tool.main(argv[:2] + ['--targets', 'fog', 'night', '--data-root',
                                world4, '--out-dir', str(tmp_path / 'o2'),
                                '--work-dir', str(tmp_path / 'wd2')])
    assert list(sub['targets']) == ['fog', 'night']
    # same checkpoint, same data: same numbers
    assert sub['targets']['fog']['mIoU'] == report['targets']['fog']['mIoU']


def test_dg_benchmark_bad_input(tiny_ckpt, tmp_path):
    tool = _load_tool()
    with pytest.raises(ValueError, match=r"unknown target\(s\) \['rain'\]"):
        tool.main([CONFIG, tiny_ckpt, '--targets', 'rain',
                   '--work-dir', str(tmp_path)])
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        tool.main([CONFIG, str(tmp_path / 'missing.pth'),
                   '--work-dir', str(tmp_path)])
    cfg = Config.fromfile(CONFIG)
    cfg.pop('dg_targets')
    with pytest.raises(ValueError, match='no dg_targets'):
        tool.resolve_targets(cfg)
    with pytest.raises(ValueError, match='repeats'):
        tool.resolve_targets(Config.fromfile(CONFIG), ['fog', 'fog'])


def test_per_class_iou_metric():
    metric = METRICS.build(dict(type='PerClassIoUMetric'))
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    gt = torch.tensor([[0, 0, 1, 1, 255, 0]])
    pred = torch.tensor([[0, 1, 1, 1, 2, 0]])
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=gt[None])
    sample.pred_sem_seg = PixelData(data=pred[None])
    metric.process([], [sample.to_dict()])
    res = metric.compute_metrics(metric.results)
    # a: inter 2, union 3; b: inter 2, union 3; c: no gt, no pred (ignored px)
    assert res['IoU.a'] == pytest.approx(66.67, abs=0.01)
    assert res['IoU.b'] == pytest.approx(66.67, abs=0.01)
    assert np.isnan(res['IoU.c'])
    assert res['Acc.a'] == pytest.approx(66.67, abs=0.01)
    assert res['mIoU'] == pytest.approx(66.67, abs=0.01)
