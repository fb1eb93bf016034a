"""tools/gpu_check.py: what it plans for each method's synthetic config, and
a clear refusal when CUDA is asked for but absent. (The script itself was run
end to end with --device cpu --iters 1; on a GPU it has not run yet.)"""
import importlib.util
import os.path as osp

import pytest
import torch

from clipdense.testing.runs import ROOT

spec = importlib.util.spec_from_file_location(
    'gpu_check', osp.join(ROOT, 'tools', 'gpu_check.py'))
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_every_method_has_a_synthetic_config():
    names = [osp.basename(p) for p in gpu_check.synthetic_configs(None)]
    for method in ('maskclip', 'denseclip', 'retinanet', 'mask-rcnn', 'ovseg',
                   'reco', 'vltseg', 'anovl', 'winclip', 'affordanceclip',
                   'clip_synth-rn', 'fpn_clip'):
        assert any(method in n for n in names), method


@pytest.mark.parametrize('name,trains,epoch_based,task', [
    ('maskclip/maskclip_clip-synth-rn_synthetic-128x128.py', False, False, 'semseg'),
    ('quickstart/fpn_clip-synth-rn_1xb8-1k_synthetic-flat-128x128.py', True, False, 'semseg'),
    ('denseclip_det/clip-retinanet_clip-synth-rn_1xb4-6e_synthetic-coco-128x128.py',
     True, True, None),
    ('anovl/anovl-tta_clip-synth-rn_synthetic-mvtec-128x128.py', False, False, 'anomaly'),
    ('affordanceclip/affordanceclip_clip-synth-rn_1xb16-1k_synthetic-refer-128x128.py',
     True, False, 'affordance'),
])
def test_plan(name, trains, epoch_based, task):
    got = gpu_check.plan(osp.join(ROOT, 'configs', name))
    assert got[:3] == (trains, epoch_based, task)
    assert got[3] is True  # every one is evaluated


def test_cuda_requested_without_cuda_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert gpu_check.main(['--device', 'cuda']) == 2
    assert '--device cpu' in capsys.readouterr().err
