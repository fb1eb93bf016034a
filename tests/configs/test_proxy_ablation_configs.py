"""The issue-#25 ablation configs on the proxy CLIP ViT (DenseCLIP vs.
CLIP + FPN, VLTSeg CLIP vs. random init) with a random-weight
``clipdense-synth-vit8`` checkpoint written here: each builds, loads (or,
for the random-init arm, does not load) the proxy's weights, makes the
pyramid the ViT parts ask for and takes one loss/backward step; the two
arms of an ablation share their schedule; the benches' ``ablation``
summaries have the shape ``ablations_table.py`` reads."""
import os.path as osp
import runpy
from types import SimpleNamespace

import open_clip
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData

from clipdense.models.utils.clip_archs import register_clip_archs
from clipdense.testing.runs import ROOT

DC = 'configs/denseclip/{}_clip-synth-vit8_1xb8-120_synthetic-flat-128x128.py'
VLT = 'configs/vltseg/vltseg_{}_1xb4-150_synthetic-flat-128x128.py'
CONFIGS = {
    'denseclip': DC.format('denseclip'),
    'clipfpn': DC.format('clipfpn'),
    'vltseg-clip': VLT.format('clip-synth-vit8'),
    'vltseg-scratch': VLT.format('synth-vit8-scratch'),
}


@pytest.fixture(scope='module')
def proxy_ckpt(tmp_path_factory):
    register_clip_archs()
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('proxy') / 'proxy_clip.pt')
    model = open_clip.create_model('clipdense-synth-vit8')
    with torch.no_grad():  # a recognisable tower weight
        model.visual.conv1.weight.normal_(0, 0.02)
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def _cfg(name, weights):
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))
    if cfg.model.backbone.get('pretrained'):
        assert cfg.model.backbone.pretrained == 'work_dirs/proxy/proxy_clip.pt'
        cfg.model.backbone.pretrained = weights
    if 'text_encoder' in cfg.model:
        assert cfg.model.text_encoder.arch == 'clipdense-synth-vit8'
        cfg.model.text_encoder.pretrained = weights
    return cfg


def _samples(n=2, size=128):
    from mmseg.structures import SegDataSample
    out = []
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        d = SegDataSample()
        d.gt_sem_seg = PixelData(data=torch.randint(0, 13, (1, size, size), generator=g))
        d.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            pad_shape=(size, size)))
        out.append(d)
    return out


@pytest.mark.parametrize('name', list(CONFIGS))
def test_config_builds_loads_and_steps(name, proxy_ckpt):
    from clipdense.registry import MODELS
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    weights, state = proxy_ckpt
    cfg = _cfg(name, weights)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    bb = model.backbone
    assert bb.arch == 'clipdense-synth-vit8'
    loaded = torch.equal(bb.visual.conv1.weight, state['visual.conv1.weight'])
    assert loaded == (name != 'vltseg-scratch')
    if name == 'denseclip':
        # the text tower is the proxy's too
        te = model.text_encoder
        assert te.arch == 'clipdense-synth-vit8'
        sd = {k: v for k, v in te.state_dict().items() if k.endswith('token_embedding.weight')}
        assert sd and all(torch.equal(v, state['token_embedding.weight']) for v in sd.values())
    # 4 taps of a 4-block ViT, patch 8 at 128 px: levels at strides 2, 4, 8, 16
    model.eval()
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 128, 128))
    maps = [f for f in feats if torch.is_tensor(f) and f.dim() == 4][:4]
    assert [tuple(f.shape[1:]) for f in maps] == [(96, 64, 64), (96, 32, 32),
                                                  (96, 16, 16), (96, 8, 8)]
    # one training step: finite loss, gradients reach the tower
    model.train()
    losses = model.loss(torch.randn(2, 3, 128, 128), _samples())
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    g = bb.visual.conv1.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.parametrize('pair', [('denseclip', 'clipfpn'),
                                  ('vltseg-clip', 'vltseg-scratch')])
def test_arms_share_the_schedule(pair):
    a, b = (Config.fromfile(osp.join(ROOT, CONFIGS[n])) for n in pair)
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper', 'randomness'):
        assert a[key] == b[key], key
    assert a.train_dataloader.batch_size == b.train_dataloader.batch_size
    assert a.train_dataloader.dataset == b.train_dataloader.dataset
    assert a.train_dataloader.dataset.data_prefix.img_path == 'flat/img_dir/train'
    iters = a.train_cfg.max_iters
    assert str(iters) in CONFIGS[pair[0]]  # the name says the schedule
    assert a.param_scheduler[-1]['end'] == iters  # poly runs to the last iteration


def _arms_ok(abl, claim, arms, n):
    assert abl['claim'] == claim
    m, = abl['metrics']
    assert m['higher_is_better'] is True
    assert m['order'] == arms
    assert set(m['arms']) == set(arms)
    assert all(len(v) == n for v in m['arms'].values())
    return m


def test_denseclip_bench_ablation_summary():
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/bench_denseclip.py'))
    styles = ['flat', 'textured', 'night', 'fog']

    def run(seed, base):
        return dict(seed=seed, iters=120, train_seconds=1.0,
                    miou={s: base + i for i, s in enumerate(styles)},
                    loss_curve=[2.0, 1.5, 1.2, 1.1])
    syn = dict(styles=styles, source='flat',
               labels={m: bench['SYNTH_PROXY'][m][0] for m in bench['SYNTH_PROXY']},
               rows={'clipfpn': [run(0, 10), run(1, 12), run(2, 11)],
                     'denseclip-post': [run(0, 20), run(1, 21), run(2, 19)]})
    abl = bench['proxy_ablation'](syn)
    m = _arms_ok(abl, 'DenseCLIP > CLIP + FPN (segmentation)',
                 ['DenseCLIP (post-model prompting)', 'CLIP + FPN (baseline)'], 3)
    # targets mean = base + (1 + 2 + 3) / 3; the source style stays out
    assert m['arms']['CLIP + FPN (baseline)'] == [12.0, 14.0, 13.0]
    assert m['arms']['DenseCLIP (post-model prompting)'] == [22.0, 23.0, 21.0]
    assert abl['seeds'] == [0, 1, 2]
    assert '120 iterations' in abl['schedule'] and '1.200 -> 1.100' in abl['schedule']


def test_vltseg_bench_ablation_summary(tmp_path):
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/bench_vltseg.py'))
    labels = [c[0] for c in bench['CONFIGS_PROXY']]
    assert labels == ['CLIP init', 'random init']
    rows = [dict(model=lab, tag=tag, seed=s, iters=150, batch_size=4,
                 target_mean_mIoU=v, loss_curve=[30.0, 20.0, 15.0])
            for lab, tag, vals in (('CLIP init', 'clip', [5, 6, 7]),
                                   ('random init', 'scratch', [4, 4, 5]))
            for s, v in zip([0, 1, 2], vals)]
    summary = [dict(model='CLIP init', tag='clip'), dict(model='random init', tag='scratch')]
    (tmp_path / 'v_note.md').write_text('First paragraph\nof the note.\n\nMore detail.')
    args = SimpleNamespace(train_seeds=[0, 1, 2], out=str(tmp_path / 'v'))
    abl, extra = bench['proxy_ablation'](args, summary, rows)
    m = _arms_ok(abl, 'CLIP init > random init under style shift (VLTSeg)', labels, 3)
    assert m['arms'] == {'CLIP init': [5, 6, 7], 'random init': [4, 4, 5]}
    assert abl['note'] == 'First paragraph of the note.'
    assert '150 iterations of batch 4' in abl['schedule']
    assert any('More detail.' in line for line in extra)
    assert '| CLIP init | 0 | 30.000 | 20.000 | 15.000 |' in extra
