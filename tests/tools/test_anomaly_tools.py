"""End to end: tools/test.py on an AnoVL config (metrics + --show-dir heat
maps) and demo/image_demo.py --task anomaly, on a tiny MVTec-format world
with a random tiny CLIP written by the test."""
import glob
import importlib.util
import os.path as osp

import pytest
import torch

from clipdense.testing import register_tiny_models
from clipdense.testing.runs import ROOT

CONFIG = osp.join(ROOT, 'configs/anovl/anovl-tta_clip-synth-rn_synthetic-mvtec-128x128.py')
WINCLIP = osp.join(ROOT, 'configs/winclip/winclip_clip-synth-rn_synthetic-mvtec-128x128.py')


@pytest.fixture(scope='module')
def anomaly_world(tmp_path_factory):
    from clipdense.datasets.synthetic import generate_world
    out = tmp_path_factory.mktemp('anomaly') / 'synthetic'
    generate_world(str(out), seed=0, size=64, parts=('anomaly', ), num_anomaly_train=1,
                   num_anomaly_good=2, num_anomaly_defect=1, progress=False)
    import open_clip
    register_tiny_models()
    model = open_clip.create_model('clipdense-tiny-rn', pretrained=None)
    weights = str(out.parent / 'tiny_rn.pt')
    torch.save(model.state_dict(), weights)
    return str(out), weights


def options(world, weights, extra=()):
    return ['--cfg-options', f'test_dataloader.dataset.data_root={world}/mvtec',
            'model.backbone.arch=clipdense-tiny-rn', f'model.backbone.pretrained={weights}',
            *extra]


def test_tools_test_metrics_and_show_dir(anomaly_world, tmp_path):
    world, weights = anomaly_world
    spec = importlib.util.spec_from_file_location('cd_test_tool', osp.join(ROOT, 'tools/test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    show = tmp_path / 'show'
    metrics = tool.main([CONFIG, 'none', '--work-dir', str(tmp_path / 'w'),
                         '--show-dir', str(show)] + options(
        world, weights, ['model.head.text_encoder.arch=clipdense-tiny-rn',
                         f'model.head.text_encoder.pretrained={weights}',
                         'test_dataloader.dataset.categories=[bottle,wood]']))
    for k in ('pixel_auroc', 'aupro', 'image_auroc', 'pixel_ap', 'image_f1_max'):
        assert 0 <= metrics[k] <= 100
    assert 'bottle/pixel_auroc' in metrics and 'wood/aupro' in metrics
    assert 'capsule/aupro' not in metrics
    pics = glob.glob(str(show / '**' / '*.png'), recursive=True)
    # one picture per image: 2 classes x (2 good + 2 defect types x 1)
    assert len(pics) == 2 * (2 + 2)
    import mmcv
    assert mmcv.imread(pics[0]).shape == (64, 128, 3)  # image | heat map


def test_winclip_through_tools(anomaly_world, tmp_path):
    world, weights = anomaly_world
    spec = importlib.util.spec_from_file_location('cd_test_tool2', osp.join(ROOT, 'tools/test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    metrics = tool.main([WINCLIP, 'none', '--work-dir', str(tmp_path / 'w')] + options(
        world, weights, ['model.text_encoder.arch=clipdense-tiny-rn',
                         f'model.text_encoder.pretrained={weights}',
                         'test_dataloader.dataset.categories=[capsule]']))
    assert 0 <= metrics['pixel_auroc'] <= 100 and 0 <= metrics['image_auroc'] <= 100


def test_demo_anomaly_task(anomaly_world, tmp_path, capsys):
    world, weights = anomaly_world
    spec = importlib.util.spec_from_file_location('cd_demo', osp.join(ROOT, 'demo/image_demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    img = sorted(glob.glob(osp.join(world, 'mvtec', 'capsule', 'test', 'crack', '*.png')))[0]
    out = str(tmp_path / 'heat.png')
    opts = ['--cfg-options', 'model.backbone.arch=clipdense-tiny-rn',
            f'model.backbone.pretrained={weights}',
            'model.head.text_encoder.arch=clipdense-tiny-rn',
            f'model.head.text_encoder.pretrained={weights}']
    assert demo.main([img, CONFIG, '--task', 'anomaly', '--out-file', out] + opts) == 0
    printed = capsys.readouterr().out
    assert "class 'capsule'" in printed  # from the MVTec folder layout
    import mmcv
    assert mmcv.imread(out).shape == (64, 128, 3)
    # an image outside the MVTec layout needs --class-name
    plain = str(tmp_path / 'plain.png')
    import shutil
    shutil.copy(img, plain)
    assert demo.main([plain, CONFIG, '--task', 'anomaly', '--out-file', out] + opts) == 2
    assert '--class-name' in capsys.readouterr().err
    assert demo.main([plain, CONFIG, '--task', 'anomaly', '--class-name', 'pill',
                      '--out-file', out] + opts) == 0
    assert "class 'pill'" in capsys.readouterr().out


def test_bench_anomaly_tta_cost(anomaly_world, tmp_path, monkeypatch):
    """bench_anomaly.py's timing of AnoVL's test-time adaptation wraps the
    shipped head's ``adapt`` (whatever its arguments) and times every image."""
    import argparse
    world, weights = anomaly_world
    spec = importlib.util.spec_from_file_location(
        'cd_bench_anomaly', osp.join(ROOT, 'tools/analysis_tools/bench_anomaly.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    load = bench.load_cfg

    def tiny(path, args, w):
        cfg = load(path, args, w)
        cfg.model.backbone.arch = 'clipdense-tiny-rn'
        enc = cfg.model.head.text_encoder if 'head' in cfg.model else cfg.model.text_encoder
        enc.arch = 'clipdense-tiny-rn'
        return cfg
    monkeypatch.setattr(bench, 'load_cfg', tiny)
    args = argparse.Namespace(data_root=world, bench_dir=str(tmp_path))
    cost = bench.tta_cost(args, weights, n_images=2, repeats=1)
    assert cost['images'] == 2 and cost['steps'] > 0
    assert cost['tfa_s_per_image'] > 0 and cost['tta_s_per_image'] > 0
    assert cost['adapt_s_per_image'] is not None and cost['adapt_s_per_image'] > 0
