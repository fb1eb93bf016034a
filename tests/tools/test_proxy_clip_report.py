"""tools/analysis_tools/proxy_clip_report.py and ablations_table.py on a
tiny world with untrained weights (plumbing and the resolution diagnostic;
the real numbers come from the trained CLIPs)."""
import argparse
import json
import os.path as osp
import runpy

import open_clip
import pytest
import torch

from clipdense.datasets.synthetic import generate_world
from clipdense.models.utils.clip_archs import register_clip_archs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('report')
    world = generate_world(
        str(tmp / 'world'), size=128, num_train=2, num_val=2,
        styles=('flat', ), parts=('seg', 'classification', 'anomaly'),
        num_cls_per_class=1, num_anomaly_train=1, num_anomaly_good=1,
        num_anomaly_defect=1, progress=False)
    register_clip_archs()
    weights = {}
    for arch in ('clipdense-synth-rn', 'clipdense-synth-vit8'):
        torch.manual_seed(0)
        weights[arch] = str(tmp / f'{arch}.pt')
        torch.save(open_clip.create_model(arch).state_dict(), weights[arch])
    return tmp, world, weights


def test_report_and_ablations(setup):
    tmp, world, weights = setup
    report = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/'
                                     'proxy_clip_report.py'))
    res = report['main']([
        '--data-root', world['root'], '--tiny', weights['clipdense-synth-rn'],
        '--proxy', weights['clipdense-synth-vit8'], '--styles', 'flat',
        '--probe-steps', '3', '--out', str(tmp / 'proxy_clip')])
    tiny, proxy = res['tiny CLIP (quickstart)'], res['proxy CLIP']
    assert tiny['grid'] == [4, 4] and proxy['grid'] == [16, 16]
    # the finer grid can represent the labels better (oracle per cell)
    assert (proxy['per_style']['flat']['oracle'] >
            tiny['per_style']['flat']['oracle'])
    for r in (tiny, proxy):
        assert 0 <= r['zero_shot_top1'] <= 100
        assert set(r['anomaly_auroc']) == {'bottle', 'capsule', 'tile', 'wood'}
    md = open(tmp / 'proxy_clip.md').read()
    assert 'Command: `python tools/analysis_tools/proxy_clip_report.py' in md
    assert '| proxy CLIP | clipdense-synth-vit8 | 16x16 |' in md
    saved = json.load(open(tmp / 'proxy_clip.json'))
    assert saved['results']['proxy CLIP']['grid'] == [16, 16]



def test_anovl_on_the_proxy(setup):
    tmp, world, weights = setup
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/'
                                    'bench_anomaly_proxy.py'))
    cfg = bench['proxy_cfg'](bench['CONFIGS'][2][1], type('A', (), dict(
        data_root=world['root'], proxy=weights['clipdense-synth-vit8'],
        bench_dir=str(tmp / 'b')))(), seed=7)
    assert cfg.model.backbone.type == 'OpenCLIPViT'
    assert 'vv' in cfg.model.backbone.joint_outputs
    assert cfg.model.head.tta.seed == 7
    assert cfg.model.head.text_encoder.arch == 'clipdense-synth-vit8'
    # WinCLIP keeps its text tower in the detector, not in a head
    win = bench['proxy_cfg'](bench['CONFIGS'][3][1], type('A', (), dict(
        data_root=world['root'], proxy=weights['clipdense-synth-vit8'],
        bench_dir=str(tmp / 'b')))(), seed=0)
    assert win.model.type == 'WinCLIPDetector'
    assert win.model.backbone.type == 'OpenCLIPViT'
    assert win.model.text_encoder.pretrained == weights['clipdense-synth-vit8']
    rows = bench['main'](['--data-root', world['root'], '--proxy',
                          weights['clipdense-synth-vit8'], '--bench-dir',
                          str(tmp / 'b'), '--seeds', '0', '1', '--out',
                          str(tmp / 'anomaly_proxy'), '--tfa-paths', 'value'])
    assert [len(r['runs']) for r in rows] == [1, 1, 2, 1, 1]
    # the diagnostic row: the training-free config read on the value path
    assert 'value path' in rows[4]['method']
    assert rows[4]['mean']['pixel_auroc'] != rows[1]['mean']['pixel_auroc']
    vcfg = bench['proxy_cfg'](bench['CONFIGS'][1][1], argparse.Namespace(
        bench_dir=str(tmp / 'c'), data_root=world['root'],
        proxy=weights['clipdense-synth-vit8']), 0, 'value')
    assert vcfg.model.feature_path == 'value'
    assert 'value' in vcfg.model.backbone.joint_outputs
    last = bench['proxy_cfg'](bench['CONFIGS'][1][1], argparse.Namespace(
        bench_dir=str(tmp / 'c'), data_root=world['root'],
        proxy=weights['clipdense-synth-vit8']), 0, 'vv-last')
    assert last.model.feature_path == 'vv'
    assert tuple(last.model.backbone.vv_indices) == (-1, )
    assert 'vv-last' in last.work_dir
    # the file names the weights it ran, not the default cache
    md = open(str(tmp / 'anomaly_proxy.md')).read()
    assert f'`{weights["clipdense-synth-vit8"]}`' in md
    assert 'work_dirs/proxy/proxy_clip.pt' not in md
    assert rows[3]['method'].startswith('WinCLIP') and rows[3]['spread'] is None
    assert rows[0]['spread'] is None and rows[2]['spread'] is not None
    for r in rows:
        assert 0 <= r['mean']['pixel_auroc'] <= 100
    table = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/'
                                    'ablations_table.py'))
    row = table['summarize'](table['anovl_ablation'](
        str(tmp / 'anomaly_proxy.json')))
    assert 'TTA' in row['ours'] and '(seeds ' in row['ours']
    assert row['reproduced'] in ('yes', 'no')


def test_training_free_methods_on_the_proxy(setup):
    """MaskCLIP, ClearCLIP, SCLIP and the naive baseline run from their
    shipped proxy configs through the test loop, each row with its own
    last-block path and the proxy's weights in both towers."""
    tmp, world, weights = setup
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/'
                                    'bench_training_free_proxy.py'))
    assert bench['main']([
        '--data-root', world['root'], '--weights', weights['clipdense-synth-vit8'],
        '--styles', 'flat', '--max-val', '2', '--work-dir', str(tmp / 'tf'),
        '--out', str(tmp / 'tf_proxy')]) == 0
    saved = json.load(open(tmp / 'tf_proxy.json'))
    assert set(saved['results']) == {'naive dense CLIP', 'MaskCLIP', 'ClearCLIP', 'SCLIP'}
    for row in saved['results'].values():
        assert 0 <= row['flat']['mIoU'] <= 100
    md = open(tmp / 'tf_proxy.md').read()
    assert 'Command: `python tools/analysis_tools/bench_training_free_proxy.py' in md
    cfgs = {name: bench['make_cfg'](path, key, 'flat', type('A', (), dict(
        weights=weights['clipdense-synth-vit8'], data_root=world['root'],
        max_val=2, work_dir=str(tmp / 'tf')))(), 0)
        for name, path, key in bench['ROWS']}
    keys = {n: c.model.decode_head.get('value_key', 'value') for n, c in cfgs.items()}
    assert keys == {'naive dense CLIP': 'dense', 'MaskCLIP': 'value',
                    'ClearCLIP': 'clearclip', 'SCLIP': 'sclip'}
    for c in cfgs.values():
        assert c.model.backbone.arch == 'clipdense-synth-vit8'
        assert c.model.backbone.pretrained == weights['clipdense-synth-vit8']


def test_maskclip_over_proxy_seeds(setup):
    """bench_maskclip_proxy_seeds.py: the two rows of the MaskCLIP claim run
    once per proxy seed, the claim written with one value per seed, and the
    ablations table reads it instead of the one-proxy training-free file; a
    copied weight file, a missing seed or a single seed is refused."""
    import shutil
    tmp, world, weights = setup
    w0 = weights['clipdense-synth-vit8']
    torch.manual_seed(1)
    w1 = str(tmp / 'vit8_seed1.pt')
    torch.save(open_clip.create_model('clipdense-synth-vit8').state_dict(), w1)
    bench = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/'
                                    'bench_maskclip_proxy_seeds.py'))
    res = tmp / 'seeds_results'
    res.mkdir()
    common = ['--data-root', world['root'], '--styles', 'flat', '--max-val', '2',
              '--work-dir', str(tmp / 'seeds')]
    assert bench['main'](common + ['--seed-weights', f'0={w0}', f'1={w1}',
                                   '--out', str(res / 'maskclip_seeds_proxy')]) == 0
    saved = json.load(open(res / 'maskclip_seeds_proxy.json'))
    ab = saved['ablation']
    assert ab['claim'] == 'MaskCLIP > naive dense CLIP' and ab['seeds'] == [0, 1]
    arms = ab['metrics'][0]['arms']
    assert [len(v) for v in arms.values()] == [2, 2]
    assert arms['MaskCLIP'][1] == saved['results']['1']['MaskCLIP']['flat']['mIoU']
    assert saved['sha256']['0'] != saved['sha256']['1']
    # the two seeds' weights differ, so (almost surely) their numbers do
    assert 'deterministic' not in ab['metrics'][0]
    # the table takes this file for the MaskCLIP row over the one-proxy file
    (res / 'training_free_proxy.json').write_text(json.dumps(dict(results={
        n: {'flat': dict(mIoU=50.0, aAcc=1.0)}
        for n in ('MaskCLIP', 'naive dense CLIP')})))
    table = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/ablations_table.py'))
    found = table['collect'](str(res))
    got, path = found['MaskCLIP > naive dense CLIP']
    assert path.endswith('maskclip_seeds_proxy.json')
    row = table['summarize'](got)
    assert row['beyond'] != 'no seed spread (deterministic arms, one proxy)'
    assert '(seeds ' in row['ours']

    copy = str(tmp / 'copy.pt')
    shutil.copy(w1, copy)
    with pytest.raises(SystemExit, match='identical'):
        bench['main'](common + ['--seed-weights', f'0={w1}', f'1={copy}'])
    with pytest.raises(SystemExit, match='--train-seed 2 --work-dir'):
        bench['main'](common + ['--seed-weights', f'0={w0}',
                                f'2={tmp}/nowhere/proxy_clip.pt'])
    with pytest.raises(SystemExit, match='two or more'):
        bench['main'](common + ['--seed-weights', f'0={w0}'])
    with pytest.raises(SystemExit, match='SEED=PATH'):
        bench['main'](common + ['--seed-weights', f'0={w0}', w1])
