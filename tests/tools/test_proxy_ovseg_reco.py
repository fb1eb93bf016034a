"""OVSeg and ReCo / ReCo+ on the proxy CLIP ViT (issue #25): the
``clip-synth-vit8`` configs and ``bench_ovseg.py`` / ``bench_reco.py
--clip proxy``, on a tiny world with random-weight CLIPs of the real
architectures written here (plumbing, the mask-prompt path and the result
format; the numbers come from the trained proxy)."""
import json
import os.path as osp
import runpy

import open_clip
import pytest
import torch
from mmengine.config import Config

from clipdense.models.utils.clip_archs import register_clip_archs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OVSEG_CFG = 'configs/ovseg/ovseg_clip-synth-vit8_1xb4-400_synthetic-seen-128x128.py'
RECO_CFG = 'configs/reco/reco_clip-synth-vit8_synthetic-128x128.py'
RECO_PLUS_CFG = ('configs/reco/reco-plus_deeplabv3plus_clip-synth-vit8_1xb8-300_'
                 'synthetic-flat-128x128.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from clipdense.datasets.synthetic import generate_world
    tmp = tmp_path_factory.mktemp('proxy_methods')
    world = generate_world(str(tmp / 'world'), seed=0, size=64, num_train=12, num_val=4,
                           styles=('flat', ), parts=('seg', 'captions'),
                           num_clip_train=2, num_clip_val=2, progress=False)
    register_clip_archs()
    weights = {}
    for arch in ('clipdense-synth-rn', 'clipdense-synth-vit8'):
        torch.manual_seed(0)
        weights[arch] = str(tmp / f'{arch}.pt')
        torch.save(open_clip.create_model(arch).state_dict(), weights[arch])
    return tmp, world, weights


def test_vit8_configs_keep_the_tiny_clip_settings():
    """The proxy configs change the CLIP and nothing chosen on results:
    the tiny-CLIP configs' recipe stays (issue #25, item 4)."""
    ov, ov_rn = (Config.fromfile(osp.join(ROOT, p)) for p in (
        OVSEG_CFG, 'configs/ovseg/ovseg_clip-synth-rn_1xb4-400_synthetic-seen-128x128.py'))
    head, head_rn = ov.model.decode_head, ov_rn.model.decode_head
    assert head.clip_classifier.arch == head.text_encoder.arch == 'clipdense-synth-vit8'
    # the proposal backbone is a network separate from the CLIP (OVSeg)
    assert ov.model.backbone == ov_rn.model.backbone
    for k in ('ensemble_weight', 'mask_thr', 'num_queries', 'vocabulary',
              'train_vocabulary'):
        assert head[k] == head_rn[k], k
    assert head.text_encoder.templates == head_rn.text_encoder.templates
    assert ov.train_cfg == ov_rn.train_cfg and ov.optim_wrapper == ov_rn.optim_wrapper
    re, re_rn = (Config.fromfile(osp.join(ROOT, p)) for p in (
        RECO_CFG, 'configs/reco/reco_clip-synth-rn_synthetic-128x128.py'))
    assert re.model.clip_backbone.type == 'OpenCLIPViT'
    assert re.model.clip_backbone.arch == re.model.decode_head.text_encoder.arch \
        == 'clipdense-synth-vit8'
    for k in ('k', 'context_concepts', 'vocabulary', 'column_slicing',
              'progressive_context_elimination', 'text_attention_temperature'):
        assert re.model.decode_head[k] == re_rn.model.decode_head[k], k
    assert re.model.crf == re_rn.model.crf and re.model.archive_size == re_rn.model.archive_size
    assert re.model.index.cache_file != re_rn.model.index.cache_file
    plus, plus_rn = (Config.fromfile(osp.join(ROOT, p)) for p in (
        RECO_PLUS_CFG,
        'configs/reco/reco-plus_deeplabv3plus_clip-synth-rn_1xb8-300_synthetic-flat-128x128.py'))
    assert plus.model == plus_rn.model and plus.optim_wrapper == plus_rn.optim_wrapper
    assert plus.pseudo_label_dir != plus_rn.pseudo_label_dir
    assert plus.train_dataloader.dataset.ann_file.startswith(plus.pseudo_label_dir)


def test_ovseg_vit8_config_predicts_with_mask_prompts(setup, tmp_path):
    """The proxy config builds; mask prompt tuning applies to the ViT (it
    is refused for the ResNet) and changes the CLIP branch's output."""
    from clipdense.apis import inference_model, init_model
    tmp, world, weights = setup
    img = sorted(__import__('glob').glob(osp.join(world['root'], 'flat/img_dir/val/*.png')))[0]
    outs = []
    for depth in (0, 3):
        cfg = Config.fromfile(osp.join(ROOT, OVSEG_CFG))
        cfg.model.backbone.pretrained = weights['clipdense-synth-rn']
        head = cfg.model.decode_head
        head.text_encoder.pretrained = weights['clipdense-synth-vit8']
        head.clip_classifier.pretrained = weights['clipdense-synth-vit8']
        head.clip_classifier.prompt_depth = depth
        if depth:
            prompts = tmp_path / 'prompts.pt'
            g = torch.Generator().manual_seed(0)
            torch.save({'mask_prompts': torch.randn(3, 16 * 16, 96, generator=g)}, prompts)
            head.clip_classifier.prompt_weights = str(prompts)
        head.ensemble_weight = 1.0  # the CLIP branch alone
        model = init_model(cfg)
        if depth:
            assert tuple(model.decode_head.clip_classifier.mask_prompts.shape) == (3, 256, 96)
        res = inference_model(model, img)
        assert res.pred_sem_seg.data.shape[-2:] == (64, 64)
        outs.append(res.seg_logits.data)
    assert not torch.allclose(outs[0], outs[1])


def _gt_pairs(args, clip_weights, ckpt):
    """(masked crop, noun) pairs from the ground truth of the flat training
    images, stored as mining stores them (background = OVSeg's colour)."""
    import glob

    import mmcv

    from clipdense.datasets.synthetic import spec
    from clipdense.models.pretraining.mask_adapted_clip import store_crop_with_fill
    out = osp.join(args.work, 'mined')
    rows = []
    for path in sorted(glob.glob(osp.join(args.data_root, 'flat/img_dir/train/*.png'))):
        rgb = torch.from_numpy(mmcv.imread(path, channel_order='rgb').copy()).permute(2, 0, 1)
        gt = torch.from_numpy(mmcv.imread(path.replace('img_dir', 'ann_dir'),
                                          flag='unchanged').astype('int64'))
        for c in gt.unique().tolist():
            if c == 255:
                continue
            name = f'{osp.basename(path)[:-4]}_{c}.png'
            crop = store_crop_with_fill(rgb, gt == c).numpy()
            mmcv.imwrite(crop[:, :, ::-1], osp.join(out, 'crops', name))
            rows.append(dict(image=f'crops/{name}', caption=spec.CLASSES[c]))
    ann = osp.join(out, 'pairs.jsonl')
    with open(ann, 'w') as f:
        f.write('\n'.join(json.dumps(r) for r in rows) + '\n')
    return dict(pairs=len(rows), images=8, nouns=sorted({r['caption'] for r in rows}),
                ann_file=ann, purity=1.0, per_noun={})


def test_bench_ovseg_proxy(setup, monkeypatch):
    tmp, world, weights = setup
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/bench_ovseg.py'))
    sp = bench['sp']
    monkeypatch.setattr(sp, 'step_world', lambda args: world)
    monkeypatch.setattr(sp, 'step_clip', lambda args, w: weights['clipdense-synth-rn'])
    # random-weight proposals mask nothing, so mining is replaced by pairs
    # cut from the ground truth (mining itself: tests/datasets/test_ovseg_mining.py)
    bench['main_proxy'].__globals__['step_mine'] = _gt_pairs
    out = tmp / 'ovseg_res'
    data = bench['main'](['--clip', 'proxy', '--data-root', world['root'], '--seeds', '0', '1',
                          '--proposal-iters', '51', '--adapt-epochs', '1', '--adapt-batch',
                          '4', '--max-val', '2', '--proxy-weights',
                          weights['clipdense-synth-vit8'], '--proxy-work-dir',
                          str(tmp / 'ovseg_work'), '--results', str(out)])
    saved = json.load(open(out / 'ovseg_proxy.json'))
    ab = saved['ablation']
    assert ab['claim'] == 'OVSeg ensemble with adapted CLIP > proposals alone'
    assert ab['seeds'] == [0, 1]
    metric = ab['metrics'][0]
    assert metric['order'] == ['ensemble, adapted CLIP (lambda=0.7)', 'proposals alone (lambda=0)']
    for arm in metric['order']:
        assert len(metric['arms'][arm]) == 2
        assert metric['arms'][arm] == [p['rows'][arm]['mIoU'] for p in saved['per_seed']]
    assert 'proposals' in ab['schedule'] and 'prompt_tuning' in ab['schedule']
    assert saved['means'] == data['means']
    # per seed: its own proposal model, prompts learnt (moved off their
    # N(0, 0.02) start) and carried into the evaluated checkpoint
    from clipdense.fileio import safe_torch_load
    for seed in (0, 1):
        work = tmp / 'ovseg_work' / f'seed{seed}'
        prompts = safe_torch_load(str(work / 'mask_prompts.pt'), map_location='cpu')
        p = prompts['mask_prompts']
        assert tuple(p.shape) == (3, 256, 96)
        ck = safe_torch_load(str(work / 'eval' / 'adapted_ft_mpt.pth'), map_location='cpu')
        assert torch.equal(ck['state_dict']['decode_head.clip_classifier.mask_prompts'], p)
        ft = safe_torch_load(str(work / 'eval' / 'adapted_ft.pth'), map_location='cpu')
        assert 'decode_head.clip_classifier.mask_prompts' not in ft['state_dict']
    c0 = safe_torch_load(str(tmp / 'ovseg_work' / 'seed0' / 'eval' / 'adapted_ft.pth'),
                         map_location='cpu')['state_dict']
    c1 = safe_torch_load(str(tmp / 'ovseg_work' / 'seed1' / 'eval' / 'adapted_ft.pth'),
                         map_location='cpu')['state_dict']
    key = 'decode_head.class_embed.layers.0.weight'
    key = key if key in c0 else next(k for k in c0 if k.startswith('decode_head.')
                                     and 'clip_classifier' not in k and 'text' not in k)
    assert not torch.equal(c0[key], c1[key]), 'the seeds trained the same proposal model'
    md = open(out / 'ovseg_proxy.md').read()
    assert md.splitlines()[2].startswith('Command: `python tools/analysis_tools/bench_ovseg.py')
    assert '| 1 | ensemble, adapted CLIP (lambda=0.7) |' in md
    # a note added afterwards re-renders both files from the JSON
    bench['main'](['--clip', 'proxy', '--render-only', '--results', str(out),
                   '--note', 'because'])
    assert json.load(open(out / 'ovseg_proxy.json'))['ablation']['note'] == 'because'
    assert '## Why' in open(out / 'ovseg_proxy.md').read()


def test_bench_reco_proxy(setup):
    tmp, world, weights = setup
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/bench_reco.py'))
    sp = __import__('clipdense.apis.synthetic_pipeline', fromlist=['x'])
    mp = pytest.MonkeyPatch()
    mp.setattr(sp, 'step_world', lambda args: world)
    mp.setattr(sp, 'step_clip', lambda args, w: weights['clipdense-synth-rn'])
    out = tmp / 'reco_res'
    try:
        bench['main'](['--clip', 'proxy', '--data-root', world['root'], '--seeds', '0', '1',
                       '--reco-plus-iters', '2', '--max-val', '2', '--no-ablations',
                       '--proxy-weights', weights['clipdense-synth-vit8'],
                       '--work-dir', str(tmp / 'reco_work'), '--results', str(out)])
    finally:
        mp.undo()
    saved = json.load(open(out / 'reco_proxy.json'))
    ab = saved['ablation']
    assert ab['claim'] == 'ReCo+ > ReCo' and ab['seeds'] == [0, 1]
    metric = ab['metrics'][0]
    assert metric['order'] == ['ReCo+', 'ReCo'] and metric['deterministic'] == ['ReCo']
    assert len(metric['arms']['ReCo+']) == 2 and len(metric['arms']['ReCo']) == 1
    plus = [r for r in saved['rows'] if r['method'].startswith('ReCo+')]
    assert [r['seed'] for r in plus] == [0, 1]
    assert metric['arms']['ReCo+'] == [r['mIoU'] for r in plus]
    # ReCo ran on the proxy ViT; the ReCo+ student on the tiny ResNet
    reco = next(r for r in saved['rows'] if r['method'] == 'ReCo (training-free)')
    assert reco['config'] == RECO_CFG and plus[0]['config'] == RECO_PLUS_CFG
    assert osp.isfile(str(tmp / 'reco_work' / 'index' /
                          'synthetic-flat-train_clip-synth-vit8.npz'))
    assert saved['extra']['pseudo_labels']['count'] == 12
    assert set(saved['extra']['reco_plus_losses']) == {'0', '1'}
    assert all(len(h) > 0 for h in saved['extra']['reco_plus_losses'].values())
    md = open(out / 'reco_proxy.md').read()
    assert 'python tools/analysis_tools/bench_reco.py --clip proxy' in md
    assert 'Claim "ReCo+ > ReCo"' in md


def test_apply_ablation_sets_model_and_head_options():
    """The ``_``-prefixed options go to the model (feature level, CRF, text
    templates), the rest to the decode head; the ABLATIONS row is untouched."""
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/bench_reco.py'))
    cfg = Config.fromfile(osp.join(ROOT, 'configs/reco/reco_clip-synth-rn_synthetic-128x128.py'))
    opts = {'_dense_feature': 0, '_crf': False, '_templates': ['{}.'], 'k': 20}
    bench['apply_ablation'](cfg, opts)
    assert cfg.model.dense_feature == 0 and cfg.model.crf is False
    assert cfg.model.decode_head.text_encoder.templates == ['{}.']
    assert cfg.model.decode_head.k == 20
    assert '_crf' not in cfg.model.decode_head and 'k' not in cfg.model
    assert opts == {'_dense_feature': 0, '_crf': False, '_templates': ['{}.'], 'k': 20}
    # every shipped ablation row applies to the config it was written for
    for _, row in bench['ABLATIONS']:
        bench['apply_ablation'](Config.fromfile(osp.join(
            ROOT, 'configs/reco/reco_clip-synth-rn_synthetic-128x128.py')), row)
