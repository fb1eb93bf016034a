"""AffordanceCLIP with the proxy CLIP ViT (issue #25): the shipped config
builds with a random-weight checkpoint of the proxy's architecture and
trains its head; a frozen backbone with new layers of its own is refused;
the bench's proxy mode writes the ablation summary."""
import json
import os
import os.path as osp
import runpy

import numpy as np
import open_clip
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from clipdense.models.utils.clip_archs import register_clip_archs
from clipdense.registry import MODELS
from clipdense.testing.runs import ROOT
from clipdense.utils import register_all_modules

CONFIG = osp.join(ROOT, 'configs/affordanceclip/'
                  'affordanceclip_clip-synth-vit8_1xb16-1k_synthetic-refer-128x128.py')
ARCH = 'clipdense-synth-vit8'


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    register_all_modules()
    register_clip_archs()
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('proxy') / 'proxy_random.pt')
    torch.save(open_clip.create_model(ARCH).state_dict(), path)
    return path


def model_cfg(weights, **backbone):
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.pretrained = weights
    cfg.model.text_encoder.pretrained = weights
    cfg.model.backbone.update(backbone)
    return cfg.model


def batch(n=2, size=128):
    rng = np.random.default_rng(0)
    imgs = [torch.from_numpy(rng.integers(0, 256, (3, size, size), dtype=np.uint8))
            for _ in range(n)]
    samples = []
    for i in range(n):
        mask = torch.zeros(1, size, size, dtype=torch.long)
        mask[:, 16 + 20 * i:64 + 20 * i, 24:96] = 1
        ds = SegDataSample(metainfo=dict(
            text=['the handle of the red mug', 'the blade of the knife'][i % 2],
            ori_shape=(size, size), img_shape=(size, size)))
        ds.gt_sem_seg = PixelData(data=mask)
        samples.append(ds)
    return dict(inputs=imgs, data_samples=samples)


def test_proxy_config_trains_the_head_only(weights):
    cfg = model_cfg(weights)
    assert cfg.backbone.type == 'OpenCLIPViT' and cfg.backbone.arch == ARCH
    model = MODELS.build(cfg)
    model.init_weights()
    # the tower's taps are the levels: 3 x (width 96) at stride 8
    assert model.decode_head.in_channels == [96, 96, 96]
    assert model.backbone.strides == [8, 8, 8]
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    data = model.data_preprocessor(batch(), training=True)
    feats, joint = model.extract_feat(data['inputs'])
    assert [tuple(f.shape) for f in feats] == [(2, 96, 16, 16)] * 3
    assert tuple(joint['global'].shape) == (2, 128)
    assert tuple(joint['dense'].shape) == (2, 128, 16, 16)

    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = {k: v.clone() for k, v in model.decode_head.state_dict().items()}
    optim = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)))
    model.train()
    losses = []
    for _ in range(6):
        out = model.train_step(batch(), optim)
        losses.append(float(out['loss'].detach()))
    assert all(np.isfinite(losses)) and set(out) >= {'loss_bce', 'loss_dice'}
    assert losses[-1] < losses[0]  # the head learns the fixed batch
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    assert any(not torch.equal(v, head[k])
               for k, v in model.decode_head.state_dict().items())

    # zero-shot prediction with an action prompt: one heat map per image
    model.eval()
    data = model.data_preprocessor(batch(), training=False)
    for ds in data['data_samples']:
        ds.set_metainfo(dict(text='hold'))
    with torch.no_grad():
        pred = model.predict(data['inputs'], data['data_samples'])
    assert tuple(pred[0].pred_heatmap.data.shape) == (1, 128, 128)


def test_frozen_backbone_with_a_random_pyramid_is_refused(weights):
    cfg = model_cfg(weights, pyramid=True, out_indices=(0, 1, 2, 3))
    with pytest.raises(ValueError, match='pyramid=False'):
        MODELS.build(cfg)
    # not frozen by the segmentor: the pyramid may train, so it is allowed
    cfg.freeze_clip = False
    model = MODELS.build(cfg)
    assert any(p.requires_grad for p in model.backbone.pyramid.parameters())


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    from clipdense.datasets.synthetic import generate_world
    return generate_world(
        str(tmp_path_factory.mktemp('afford_world')), seed=0, size=64,
        parts=('affordance', ), num_refer_train=4, num_refer_val=2,
        num_agd_per_pair=1, progress=False)


def test_bench_proxy_mode(weights, world, tmp_path):
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/bench_affordance.py'))
    out = str(tmp_path / 'affordance_proxy')
    assert bench['main']([
        '--clip', 'proxy', '--proxy-weights', weights, '--data-root', world['root'],
        '--iters', '3', '--seeds', '0', '1', '--work-dir', str(tmp_path / 'wd'),
        '--out', out]) == 0
    res = json.load(open(out + '.json'))
    abl = res['ablation']
    assert abl['claim'] == 'trained affordance head > frozen CLIP'
    assert abl['seeds'] == [0, 1]
    assert [m['name'].split(' ')[0] for m in abl['metrics']] == ['KLD', 'SIM', 'NSS']
    assert [m['higher_is_better'] for m in abl['metrics']] == [False, True, True]
    head, frozen = 'trained head, action prompt (zero-shot)', 'frozen CLIP dense'
    for m in abl['metrics']:
        assert m['order'] == [head, frozen] and m['deterministic'] == [frozen]
        assert len(m['arms'][head]) == 2 and len(m['arms'][frozen]) == 1
        key = m['name'].split(' ')[0]
        # the summary holds the rows' own numbers
        assert m['arms'][head] == [next(r for r in run['rows'] if r['name'] == head)[key]
                                   for run in res['runs']]
        assert m['arms'][frozen] == [res['frozen'][0][key]]
    # per-seed loss history of the whole run
    assert [r['loss']['iters'] for r in res['runs']] == [3, 3]
    assert abl['schedule'].startswith('3 iterations at batch 16 (config: 1000')
    assert abl['note']
    td = res['info']['text_diagnostic']
    assert td['action_to_part']['pairs'] == 17  # the world's multi-part pairs
    assert 0 <= td['action_to_part']['the P'] <= 17
    assert set(td['nearest_cos']['action_prompts']) == {
        'cut', 'drink_with', 'hit', 'hold', 'kick', 'pour', 'stir'}
    md = open(out + '.md').read()
    # the command records the thread settings it ran with, whatever they are
    omp = os.environ.get('OMP_NUM_THREADS', '(unset)')
    assert md.splitlines()[2].startswith(f'Command: `OMP_NUM_THREADS={omp} ')
    assert 'python tools/analysis_tools/bench_affordance.py --clip proxy' in md
    assert '--clip proxy' in md and '| KLD |' in md


def test_bench_tiny_mode_unchanged(world, tmp_path, monkeypatch):
    """The tiny-CLIP mode (the quickstart's caches, patched here to a tiny
    world and a random tiny-CLIP checkpoint) still writes its table."""
    import clipdense.apis.synthetic_pipeline as sp
    register_clip_archs()
    torch.manual_seed(0)
    tiny = str(tmp_path / 'tiny_clip.pt')
    torch.save(open_clip.create_model('clipdense-synth-rn').state_dict(), tiny)
    monkeypatch.setattr(sp, 'step_world', lambda ns: world)
    monkeypatch.setattr(sp, 'step_clip', lambda ns, w: tiny)
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/bench_affordance.py'))
    out = str(tmp_path / 'affordance_synthetic')
    assert bench['main'](['--data-root', world['root'], '--iters', '2',
                          '--work-dir', str(tmp_path / 'wd'), '--out', out]) == 0
    res = json.load(open(out + '.json'))
    assert 'ablation' not in res
    names = [r['name'] for r in res['agd']]
    assert names[:2] == ['trained head, action prompt (zero-shot)',
                         'frozen CLIP, dense attention-pool similarity (untrained)']
    assert len(names) == 8 and res['info']['iters'] == 2
