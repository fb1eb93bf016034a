"""AnoVL's ablation (CLIP baseline / training-free / + test-time adaptation)
on the synthetic world's MVTec-format tree with the proxy CLIP (issue #25):
writes ``results/anomaly_proxy.{md,json}``.

    python tools/analysis_tools/bench_anomaly_proxy.py [--seeds 0 1 2]

The three AnoVL configs of the tiny CLIP
(``configs/anovl/anovl-*_clip-synth-rn_synthetic-mvtec-128x128.py``, run by
``tools/analysis_tools/bench_anomaly.py``) with the image tower swapped for
the proxy's ViT (``OpenCLIPViT``, ``clipdense-synth-vit8``, the config's
outputs plus ``'vv'`` where the config reads the V-V path: every block for
AnoVL, as the ViT AnoVL configs; the plain patch embeddings for the
baseline) and both towers reading
``work_dirs/proxy/proxy_clip.pt`` (``make proxy-clip``). Everything else
(prompts, smoothing, views, TTA) is the config's. Each row runs MMEngine's
test loop; the test-time adaptation draws its adapter's reset weights and
noise from ``tta.seed``, so it is run once per seed (``tta.seed`` and
``randomness.seed``) and its spread reported; the other rows are
deterministic.

WinCLIP (``configs/winclip/winclip_clip-synth-rn_synthetic-mvtec-128x128.py``,
deterministic) is run the same way as a fourth row: it is not part of
AnoVL's ablation but the training-free anchor both papers compare with; on
the proxy's ViT its windows drop tokens as the paper does (on the tiny
CLIP's ResNet they restrict the attention pool).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = [
    ('CLIP baseline (patch embeddings, plain prompts)',
     'configs/anovl/anovl-clip-baseline_clip-synth-rn_synthetic-mvtec-128x128.py',
     False),
    ('AnoVL training-free (V-V, state prompts, smoothing, 22 views)',
     'configs/anovl/anovl-tfa_clip-synth-rn_synthetic-mvtec-128x128.py', False),
    ('AnoVL training-free + test-time adaptation',
     'configs/anovl/anovl-tta_clip-synth-rn_synthetic-mvtec-128x128.py', True),
    ('WinCLIP (2x2 + 3x3 windows + image, harmonic)',
     'configs/winclip/winclip_clip-synth-rn_synthetic-mvtec-128x128.py', False),
]
METRICS = ('pixel_auroc', 'aupro', 'image_auroc', 'pixel_ap')
PATH_NAMES = {'value': "value path (MaskCLIP's read-out)",
              'dense': 'plain patch tokens (q-k)',
              'vv-last': 'V-V path in the last block only'}


def _shown(path):
    """``path`` relative to the repository when inside it."""
    rel = osp.relpath(osp.abspath(path), ROOT)
    return path if rel.startswith('..') else rel


def proxy_cfg(path, args, seed, feature_path=None):
    """The config at ``path`` on the proxy; ``feature_path`` replaces the
    detector's patch-token path (the ``--tfa-paths`` diagnostic rows)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, path))
    name = osp.splitext(osp.basename(path))[0].replace('synth-rn', 'synth-vit8')
    vv_indices = None
    if feature_path is not None:
        name += f'_{feature_path}'
        if feature_path == 'vv-last':  # V-V in the last block only
            feature_path, vv_indices = 'vv', (-1, )
        cfg.model.feature_path = feature_path
    cfg.work_dir = osp.join(args.bench_dir, f'{name}_seed{seed}')
    cfg.load_from = None
    cfg.launcher = 'none'
    cfg.log_level = 'WARNING'
    cfg.randomness = dict(seed=seed)
    head = cfg.model.get('head') or {}
    if head.get('tta'):
        # the adapter's reset weights and noise come from its own seed
        cfg.model.head.tta.seed = seed
    cfg.test_dataloader.dataset.data_root = osp.join(args.data_root, 'mvtec')
    bb = cfg.model.backbone
    outs = tuple(bb.joint_outputs)
    fp = cfg.model.get('feature_path')
    if fp is not None and fp not in outs:
        outs += (fp, )  # the ViT computes each joint path only on request
    cfg.model.backbone = dict(type='OpenCLIPViT', arch='clipdense-synth-vit8',
                              pretrained=args.proxy, pyramid=False,
                              out_indices=(-1, ),
                              joint_outputs=outs,
                              freeze='all')
    if vv_indices is not None:
        cfg.model.backbone.vv_indices = vv_indices
    # AnoVL's text tower sits in its head, WinCLIP's in the detector
    enc = head.text_encoder if 'text_encoder' in head else cfg.model.text_encoder
    enc.arch = 'clipdense-synth-vit8'
    enc.pretrained = args.proxy
    return cfg


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'synthetic'))
    parser.add_argument('--proxy', default=osp.join(ROOT, 'work_dirs', 'proxy',
                                                    'proxy_clip.pt'))
    # not under work_dirs/proxy: that folder is the proxy CLIP's own cache
    parser.add_argument('--bench-dir', default=osp.join(ROOT, 'work_dirs',
                                                        'anomaly_proxy'))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--out', default=osp.join(ROOT, 'results', 'anomaly_proxy'))
    parser.add_argument('--tfa-paths', nargs='*', default=[],
                        choices=tuple(PATH_NAMES),
                        help='diagnostic rows after the four: the training-free '
                        'config with these patch-token paths instead of V-V '
                        "in every block (MaskCLIP's value path, the plain q-k "
                        'tokens, V-V in the last block only)')
    args = parser.parse_args(argv)
    if not osp.isfile(args.proxy):
        raise SystemExit(f'no proxy CLIP at {args.proxy}: run `make proxy-clip`')
    from mmengine.runner import Runner

    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    rows = []
    specs = [(*c, None) for c in CONFIGS] + [
        (f'diagnostic: the training-free config with the {PATH_NAMES[p]} '
         'instead of V-V in every block', CONFIGS[1][1], False, p)
        for p in args.tfa_paths]
    for name, path, random, fp in specs:
        runs = []
        for seed in (args.seeds if random else args.seeds[:1]):
            t0 = time.perf_counter()
            metrics = dict(Runner.from_cfg(proxy_cfg(path, args, seed, fp)).test())
            runs.append(dict(seed=seed, seconds=time.perf_counter() - t0,
                             metrics={k: float(v) for k, v in metrics.items()}))
            print(f'{name} seed {seed}: ' + ', '.join(
                f'{m} {metrics[m]:.2f}' for m in METRICS if m in metrics), flush=True)
        mean = {m: float(np.mean([r['metrics'][m] for r in runs])) for m in METRICS}
        spread = {m: float(np.ptp([r['metrics'][m] for r in runs])) for m in METRICS}
        rows.append(dict(method=name, config=path, runs=runs, mean=mean,
                         spread=spread if len(runs) > 1 else None))
    cmd = 'python tools/analysis_tools/bench_anomaly_proxy.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    lines = ['# AnoVL ablation (and WinCLIP) on the proxy CLIP (synthetic MVTec-format '
             'tree)', '',
             f'Command: `{cmd.strip()}`', '',
             'The tiny-CLIP AnoVL and WinCLIP configs with the proxy CLIP '
             f'(`clipdense-synth-vit8`, `{_shown(args.proxy)}`) in both towers; '
             'metrics in percent, mean over the 4 categories. Rows with test-time '
             f'adaptation: mean over seeds {args.seeds} and their spread (max - min); '
             'the other rows are deterministic (one run).', '',
             '| method | ' + ' | '.join(METRICS) + ' | seed spread (pixel AUROC) | config |',
             '| --- |' + ' --- |' * (len(METRICS) + 2)]
    for r in rows:
        sp = f"{r['spread']['pixel_auroc']:.2f}" if r['spread'] else 'deterministic'
        lines.append(f"| {r['method']} | " + ' | '.join(
            f"{r['mean'][m]:.2f}" for m in METRICS) + f" | {sp} | `{r['config']}` |")
    lines.append('')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    from clipdense.engine.checkpoint import atomic_write_bytes
    atomic_write_bytes(args.out + '.md', '\n'.join(lines).encode())
    atomic_write_bytes(args.out + '.json', json.dumps(
        dict(command=cmd.strip(), rows=rows), indent=1).encode())
    print('\n'.join(lines))
    return rows


if __name__ == '__main__':
    main()
