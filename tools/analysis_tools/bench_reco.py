"""ReCo and ReCo+ next to MaskCLIP on the synthetic world, no pixel labels
used by any of them (labels are read only to score the predictions).

    python tools/analysis_tools/bench_reco.py

1. the synthetic world and the tiny CLIP (cached steps of the quickstart);
2. MaskCLIP (configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py)
   and ReCo (configs/reco/reco_clip-synth-rn_synthetic-128x128.py, plus
   ablations of its options) on the flat style's val split, all through
   MMEngine's test loop with the same metric (mmseg IoUMetric);
3. ReCo+: ReCo's pseudo-labels of the flat training images
   (clipdense.apis.write_pseudo_labels), a DeepLabv3+ trained on them with
   tools/train.py (configs/reco/reco-plus_*synthetic*.py), tested the same
   way;
4. results/reco_synthetic.md and .json, with this command on top.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from clipdense.engine.bench_harness import (build_runner, command_line, make_log, md_table,
                                            write_results as write_files)
MASKCLIP_CFG = 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py'
RECO_CFG = 'configs/reco/reco_clip-synth-rn_synthetic-128x128.py'
RECO_PLUS_CFG = 'configs/reco/reco-plus_deeplabv3plus_clip-synth-rn_1xb8-300_synthetic-flat-128x128.py'
ABLATIONS = [
    ('ReCo without language guidance and context elimination',
     dict(language_guidance=False, context_elimination=False)),
    ('ReCo with language guidance only', dict(context_elimination=False)),
    ("ReCo with clipdense's per-image column slices", dict(column_slicing='per_image')),
    ('ReCo with the context references built independently (not progressively)',
     dict(progressive_context_elimination=False)),
    ('ReCo without the dense CRF', dict(_crf=None)),
    ('ReCo without text attention at inference', dict(dense_clip_inference=False)),
    ('ReCo co-segmenting C4 features (stride 16) instead of C5', dict(_dense_feature=0)),
    ('ReCo with k=20', dict(k=20)),
    ("ReCo with MaskCLIP's caption phrasing of the classes", dict(
        vocabulary=['a ball', 'a cup', 'a bottle', 'a knife', 'a hammer', 'a key', 'a mug',
                    'a spoon', 'a racket', 'a scissors', 'under the sky', 'on the grass',
                    'on a road'],
        context_concepts=['under the sky', 'on the grass', 'on a road'],
        _templates=['a photo of {}.', 'a picture of {}.', 'there is {}.', '{}.'])),
]


log = make_log('bench_reco')


def _cfg(path, args, clip, work):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.work_dir = work
    cfg.experiment_name = f'{osp.basename(work)}_{int(time.time())}'
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(dl) is not None and cfg[dl].dataset.get('data_root'):
            cfg[dl].dataset.data_root = args.data_root
    # one metric for every method
    cfg.test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
    cfg.val_evaluator = cfg.test_evaluator
    cfg.test_dataloader.dataset.data_prefix = dict(
        img_path='flat/img_dir/val', seg_map_path='flat/ann_dir/val')
    if cfg.get('default_hooks') is None:
        cfg.default_hooks = dict()
    cfg.default_hooks['logger'] = dict(type='LoggerHook', interval=1000)
    return cfg


def _set_clip(cfg, clip):
    m = cfg.model
    if m.type == 'ReCo':
        m.clip_backbone.pretrained = clip
        m.decode_head.text_encoder.pretrained = clip
    else:
        m.backbone.pretrained = clip
        if 'text_encoder' in m.decode_head:
            m.decode_head.text_encoder.pretrained = clip


def _test(cfg, checkpoint=None):
    if checkpoint:
        cfg.load_from = checkpoint
    t0 = time.perf_counter()
    runner = build_runner(cfg)
    metrics = runner.test()
    out = {k: float(v) for k, v in metrics.items()}
    out['seconds'] = time.perf_counter() - t0
    return out, runner


def apply_ablation(cfg, opts):
    """Set one ABLATIONS row's options on a ReCo config: the ``_``-prefixed
    keys on the model (dense feature level, CRF, text templates), the rest
    on the decode head."""
    head_opts = dict(opts)
    if '_dense_feature' in head_opts:
        cfg.model.dense_feature = head_opts.pop('_dense_feature')
    if '_crf' in head_opts:
        cfg.model.crf = head_opts.pop('_crf')
    if '_templates' in head_opts:
        cfg.model.decode_head.text_encoder.templates = head_opts.pop('_templates')
    cfg.model.decode_head.update(head_opts)


def make_pseudo_labels(model, cfg, data_root, pseudo_dir, extra):
    """ReCo's pseudo-labels of the flat training images into ``pseudo_dir``;
    their count, time and quality against the (otherwise unused) training
    ground truth go to ``extra['pseudo_labels']``."""
    from clipdense.apis import write_pseudo_labels
    from clipdense.datasets.synthetic import spec
    model.cfg = cfg  # what inference_model reads (the runner's model lacks it)
    t0 = time.perf_counter()
    meta = write_pseudo_labels(model, osp.join(data_root, 'flat/img_dir/train'),
                               pseudo_dir, progress=False)
    extra['pseudo_labels'] = dict(dir=pseudo_dir, count=meta['count'],
                                  seconds=time.perf_counter() - t0)
    miou, acc = pseudo_label_quality(pseudo_dir, osp.join(data_root, 'flat/ann_dir/train'),
                                     len(spec.CLASSES))
    extra['pseudo_labels'].update(train_mIoU_vs_gt=miou, train_aAcc_vs_gt=acc)
    log(f'pseudo-labels: {meta["count"]} maps, mIoU vs (unused) train GT {miou:.2f}')


def pseudo_label_quality(pseudo_dir, gt_dir, num_classes):
    """mIoU of the pseudo-labels against the (never trained on) ground
    truth of the same training images: a diagnostic of their quality."""
    import cv2
    import numpy as np
    hist = np.zeros((num_classes, num_classes), np.int64)
    for name in sorted(os.listdir(gt_dir)):
        gt = cv2.imread(osp.join(gt_dir, name), cv2.IMREAD_UNCHANGED).astype(np.int64)
        pr = cv2.imread(osp.join(pseudo_dir, name), cv2.IMREAD_UNCHANGED).astype(np.int64)
        keep = gt != 255
        hist += np.bincount(num_classes * gt[keep] + pr[keep],
                            minlength=num_classes ** 2).reshape(num_classes, num_classes)
    iou = np.diag(hist) / np.maximum(hist.sum(0) + hist.sum(1) - np.diag(hist), 1)
    present = hist.sum(1) > 0
    return float(iou[present].mean() * 100), float(np.diag(hist).sum() / hist.sum() * 100)


def retrieval_precision(model, data_root):
    """Fraction of the retrieved images that contain the concept (read
    from the ground truth of the pool, for reporting only)."""
    import cv2
    from clipdense.datasets.synthetic import spec
    prec = {}
    for concept, hit in model.last_retrievals.items():
        if concept not in spec.CLASSES:
            continue
        cid = spec.CLASSES.index(concept)
        ok = 0
        for p in hit.paths:
            gt = cv2.imread(p.replace('/img_dir/', '/ann_dir/'), cv2.IMREAD_UNCHANGED)
            ok += int((gt == cid).any())
        prec[concept] = ok / len(hit.paths)
    return prec


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--quickstart-dir', default='work_dirs/quickstart')
    parser.add_argument('--work-dir', default='work_dirs/reco/bench')
    parser.add_argument('--results', default='results')
    parser.add_argument('--reco-plus-iters', type=int, default=None,
                        help='ReCo+ iterations (default: the config)')
    parser.add_argument('--no-ablations', action='store_true')
    parser.add_argument('--render-only', action='store_true',
                        help='rewrite the .md from the .json of the last run')
    parser.add_argument('--clip', choices=('tiny', 'proxy'), default='tiny',
                        help="ReCo's CLIP: the quickstart's tiny CLIP ResNet "
                        '(results/reco_synthetic.*) or the proxy CLIP ViT of issue #25 '
                        '(results/reco_proxy.*, ReCo+ over --seeds)')
    parser.add_argument('--proxy-weights', default='work_dirs/proxy/proxy_clip.pt',
                        help='the proxy CLIP (`make proxy-clip`)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='--clip proxy: training seeds of ReCo+')
    parser.add_argument('--max-val', type=int, default=None,
                        help='--clip proxy: score the first N val images only (tests)')
    parser.add_argument('--note', default='',
                        help='--clip proxy: a note for the results (why a claim does not '
                        'show)')
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if args.clip == 'proxy':
        if args.work_dir == 'work_dirs/reco/bench':
            args.work_dir = 'work_dirs/reco_proxy'
        if args.render_only:
            with open(osp.join(args.results, 'reco_proxy.json')) as f:
                last = json.load(f)
            return write_proxy_results(args, last['rows'], last['extra'],
                                       last['wall_seconds'], last['threads'],
                                       command=last['command'])
        return main_proxy(args, argv)
    if args.render_only:
        with open(osp.join(args.results, 'reco_synthetic.json')) as f:
            last = json.load(f)
        write_results(args, last['rows'], last['extra'], last['wall_seconds'],
                      last['threads'], command=last['command'])
        return last['rows']
    t_start = time.perf_counter()
    import torch
    from clipdense.apis import synthetic_pipeline as sp
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    wargs = argparse.Namespace(data_root=args.data_root, work_dir=args.quickstart_dir,
                               seed=0, fresh=False, tiny=False)
    log('[1/4] synthetic world and tiny CLIP (cached steps)')
    world = sp.step_world(wargs)
    clip = sp.step_clip(wargs, world)
    rows, extra = [], {}

    log('[2/4] MaskCLIP and ReCo on flat/val')
    cfg = _cfg(MASKCLIP_CFG, args, clip, osp.join(args.work_dir, 'maskclip'))
    _set_clip(cfg, clip)
    m, _ = _test(cfg)
    rows.append(dict(method='MaskCLIP (training-free)', config=MASKCLIP_CFG, **m))
    log(f"MaskCLIP mIoU {m['mIoU']:.2f}")

    cfg = _cfg(RECO_CFG, args, clip, osp.join(args.work_dir, 'reco'))
    _set_clip(cfg, clip)
    cfg.model.index.folder = osp.join(args.data_root, 'flat/img_dir/train')
    m, runner = _test(cfg)
    model = runner.model
    rows.append(dict(method='ReCo (training-free)', config=RECO_CFG, **m))
    extra['reco_index'] = dict(model.index.last_build)
    extra['reco_retrieval_precision'] = retrieval_precision(model, args.data_root)
    log(f"ReCo mIoU {m['mIoU']:.2f}; index {model.index.last_build['status']}")
    if not args.no_ablations:
        for name, opts in ABLATIONS:
            c = _cfg(RECO_CFG, args, clip, osp.join(args.work_dir, 'reco_ablation'))
            _set_clip(c, clip)
            c.model.index.folder = cfg.model.index.folder
            apply_ablation(c, opts)
            m, _ = _test(c)
            rows.append(dict(method=name, config=RECO_CFG, options=opts, **m))
            log(f"{name}: mIoU {m['mIoU']:.2f}")

    log('[3/4] ReCo+: pseudo-labels of flat/train, DeepLabv3+ through tools/train.py')
    make_pseudo_labels(model, cfg, args.data_root,
                       'work_dirs/reco/pseudo_labels/synthetic-flat-train', extra)
    del model, runner
    plus_dir = osp.join(args.work_dir, 'reco_plus')
    cmd = [sys.executable, 'tools/train.py', RECO_PLUS_CFG, '--work-dir', plus_dir,
           '--cfg-options', f'clip_weights={clip}',
           f'model.backbone.pretrained={clip}',
           f'train_dataloader.dataset.data_prefix.img_path={args.data_root}/flat/img_dir/train',
           f'val_dataloader.dataset.data_root={args.data_root}',
           f'test_dataloader.dataset.data_root={args.data_root}']
    if args.reco_plus_iters:
        n = args.reco_plus_iters
        cmd += [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
                f'default_hooks.checkpoint.interval={n}', f'param_scheduler.0.end={n}']
    log(' '.join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS='1',
                                        MKL_NUM_THREADS='1'),
                          capture_output=True, text=True)
    train_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f'ReCo+ training failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    from clipdense.engine.checkpoint import find_resumable_checkpoint
    ckpt = find_resumable_checkpoint(plus_dir)
    cfg = _cfg(RECO_PLUS_CFG, args, clip, osp.join(args.work_dir, 'reco_plus_test'))
    _set_clip(cfg, clip)
    m, _ = _test(cfg, ckpt)
    m['train_seconds'] = train_s
    rows.append(dict(method='ReCo+ (DeepLabv3+ on ReCo pseudo-labels)',
                     config=RECO_PLUS_CFG, checkpoint=ckpt, **m))
    log(f"ReCo+ mIoU {m['mIoU']:.2f} (trained {train_s:.0f}s)")

    log('[4/4] results')
    write_results(args, rows, extra, time.perf_counter() - t_start, torch.get_num_threads())
    return rows


# ----------------------------------------------------------------------
# the proxy CLIP ViT (issue #25)

PROXY_MASKCLIP_CFG = 'configs/maskclip/maskclip_clip-synth-vit8_synthetic-128x128.py'
PROXY_RECO_CFG = 'configs/reco/reco_clip-synth-vit8_synthetic-128x128.py'
PROXY_RECO_PLUS_CFG = ('configs/reco/reco-plus_deeplabv3plus_clip-synth-vit8_1xb8-300_'
                       'synthetic-flat-128x128.py')
CLAIM = 'ReCo+ > ReCo'
ARM_PLUS = 'ReCo+ (DeepLabv3+ on ReCo pseudo-labels)'
ARM_RECO = 'ReCo (training-free)'


def _limit(cfg, args):
    if args.max_val:
        cfg.test_dataloader.dataset.indices = list(range(args.max_val))
    return cfg


def train_losses(work_dir):
    """``(iter, loss)`` pairs that the LoggerHook wrote to
    ``<work_dir>/<timestamp>/vis_data/scalars.json`` (the newest run)."""
    import glob
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        return []
    out = []
    with open(files[-1]) as f:
        for line in f:
            r = json.loads(line)
            if 'loss' in r and 'iter' in r:
                out.append([int(r['iter']), float(r['loss'])])
    return out


def main_proxy(args, argv=None):
    """ReCo (deterministic: one run) and ReCo+ (one training per seed) with
    the proxy CLIP; MaskCLIP on the proxy as a reference row."""
    t_start = time.perf_counter()
    import torch
    from clipdense.apis import synthetic_pipeline as sp
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    if not osp.isfile(args.proxy_weights):
        raise FileNotFoundError(f'proxy CLIP weights {args.proxy_weights} not found: run '
                                '`make proxy-clip` (or pass --proxy-weights)')
    wargs = argparse.Namespace(data_root=args.data_root, work_dir=args.quickstart_dir,
                               seed=0, fresh=False, tiny=False)
    log('[1/4] synthetic world and tiny CLIP (the ReCo+ student\'s backbone; cached)')
    world = sp.step_world(wargs)
    tiny = sp.step_clip(wargs, world)
    clip = args.proxy_weights
    rows, extra = [], {}

    log('[2/4] MaskCLIP and ReCo with the proxy CLIP on flat/val')
    cfg = _limit(_cfg(PROXY_MASKCLIP_CFG, args, clip, osp.join(args.work_dir, 'maskclip')),
                 args)
    _set_clip(cfg, clip)
    m, _ = _test(cfg)
    rows.append(dict(method='MaskCLIP (training-free)', config=PROXY_MASKCLIP_CFG, **m))
    log(f"MaskCLIP mIoU {m['mIoU']:.2f}")

    cfg = _limit(_cfg(PROXY_RECO_CFG, args, clip, osp.join(args.work_dir, 'reco')), args)
    _set_clip(cfg, clip)
    cfg.model.index.folder = osp.join(args.data_root, 'flat/img_dir/train')
    cfg.model.index.cache_file = osp.join(args.work_dir, 'index',
                                          'synthetic-flat-train_clip-synth-vit8.npz')
    m, runner = _test(cfg)
    model = runner.model
    rows.append(dict(method=ARM_RECO, config=PROXY_RECO_CFG, **m))
    extra['reco_index'] = dict(model.index.last_build)
    extra['reco_retrieval_precision'] = retrieval_precision(model, args.data_root)
    log(f"ReCo mIoU {m['mIoU']:.2f}")
    for name, opts in ([] if args.no_ablations else ABLATIONS):
        if '_dense_feature' in opts:
            continue  # a ResNet's C4 / C5: no analogue chosen for the ViT
        c = _limit(_cfg(PROXY_RECO_CFG, args, clip, osp.join(args.work_dir, 'reco_ablation')),
                   args)
        _set_clip(c, clip)
        c.model.index.folder = cfg.model.index.folder
        c.model.index.cache_file = cfg.model.index.cache_file
        apply_ablation(c, opts)
        m, _ = _test(c)
        rows.append(dict(method=name, config=PROXY_RECO_CFG, options=opts, **m))
        log(f"{name}: mIoU {m['mIoU']:.2f}")

    log('[3/4] ReCo+: pseudo-labels of flat/train, DeepLabv3+ through tools/train.py per seed')
    from mmengine.config import Config

    pseudo_dir = osp.join(args.work_dir, 'pseudo_labels', 'synthetic-flat-train')
    make_pseudo_labels(model, cfg, args.data_root, pseudo_dir, extra)
    del model, runner
    plus_cfg = Config.fromfile(osp.join(ROOT, PROXY_RECO_PLUS_CFG))
    iters = args.reco_plus_iters or plus_cfg.train_cfg.max_iters
    extra['reco_plus_iters'] = iters
    extra['reco_plus_losses'] = {}
    for seed in args.seeds:
        plus_dir = osp.join(args.work_dir, f'reco_plus_seed{seed}')
        cmd = [sys.executable, 'tools/train.py', PROXY_RECO_PLUS_CFG, '--work-dir', plus_dir,
               '--cfg-options', f'clip_weights={tiny}', f'model.backbone.pretrained={tiny}',
               f'randomness.seed={seed}',
               f'pseudo_label_dir={pseudo_dir}',
               f'train_dataloader.dataset.data_prefix.seg_map_path={pseudo_dir}',
               f'train_dataloader.dataset.ann_file={pseudo_dir}/split.txt',
               f'train_dataloader.dataset.data_prefix.img_path={args.data_root}/flat/img_dir/train',
               f'val_dataloader.dataset.data_root={args.data_root}',
               f'test_dataloader.dataset.data_root={args.data_root}']
        if args.reco_plus_iters:
            n = args.reco_plus_iters
            cmd += [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
                    f'default_hooks.checkpoint.interval={n}', f'param_scheduler.0.end={n}',
                    f'default_hooks.logger.interval={min(50, n)}']
        log(' '.join(cmd))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS='1',
                                            MKL_NUM_THREADS='1'),
                              capture_output=True, text=True)
        train_s = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f'ReCo+ training failed:\n{proc.stdout[-3000:]}\n'
                               f'{proc.stderr[-3000:]}')
        from clipdense.engine.checkpoint import find_resumable_checkpoint
        ckpt = find_resumable_checkpoint(plus_dir)
        c = _limit(_cfg(PROXY_RECO_PLUS_CFG, args, clip,
                        osp.join(args.work_dir, 'reco_plus_test')), args)
        c.model.backbone.pretrained = tiny
        m, _ = _test(c, ckpt)
        m['train_seconds'] = train_s
        extra['reco_plus_losses'][str(seed)] = train_losses(plus_dir)
        rows.append(dict(method=ARM_PLUS, seed=seed, config=PROXY_RECO_PLUS_CFG,
                         checkpoint=ckpt, **m))
        log(f"ReCo+ seed {seed} mIoU {m['mIoU']:.2f} (trained {train_s:.0f}s)")

    log('[4/4] results')
    return write_proxy_results(args, rows, extra, time.perf_counter() - t_start,
                               torch.get_num_threads(),
                               command=command_line('bench_reco.py', argv))


def write_proxy_results(args, rows, extra, wall, threads, command=None):
    import numpy as np
    if command is None:
        command = command_line('bench_reco.py')
    lines = md_table(['method', 'seed', 'mIoU', 'mAcc', 'aAcc', 'seconds'], [])
    for r in rows:
        secs = r.get('train_seconds', 0) + r['seconds']
        lines.append(f"| {r['method']} | {r.get('seed', '-')} | {r['mIoU']:.2f} | "
                     f"{r['mAcc']:.2f} | {r['aAcc']:.2f} | {secs:.0f} |")
    reco = [r['mIoU'] for r in rows if r['method'] == ARM_RECO]
    plus = [r['mIoU'] for r in rows if r['method'] == ARM_PLUS]
    seeds = [r['seed'] for r in rows if r['method'] == ARM_PLUS]
    margin = float(np.mean(plus)) - reco[0]
    spread = float(max(plus) - min(plus))
    shows = margin > 0 and margin > spread
    prec = extra.get('reco_retrieval_precision', {})
    pl = extra.get('pseudo_labels', {})
    losses = extra.get('reco_plus_losses', {})
    sched = [f'ReCo+ seed {s}: loss at logged iterations ' + ', '.join(
        f'{i}: {v:.3f}' for i, v in h) for s, h in losses.items()]
    md = [
        '# ReCo and ReCo+ on the synthetic world with the proxy CLIP ViT (issue #25)', '',
        f'Produced by `{command.strip()}` ({threads} thread(s), wall time {wall:.0f} s).', '',
        'Flat style, val split (13 classes), mIoU / mAcc / aAcc in %, mmseg IoUMetric for '
        'every row; no method reads a pixel label of the training images. ReCo\'s CLIP is the '
        f'proxy (`clipdense-synth-vit8`, `{args.proxy_weights}`) for retrieval, '
        'co-segmentation (the last block\'s patch tokens, 16x16 at 128 px: the analogue of '
        'the ResNet\'s C5) and text attention; config '
        f'`{PROXY_RECO_CFG}`, whose settings (k=10, plain class names, templates, contexts, '
        'the authors\' column slices and progressive context elimination, dense CRF, 128 px '
        'archive) are the tiny-CLIP config\'s, fixed before this run; nothing was chosen on '
        'these numbers. ReCo is training-free and deterministic: one run. ReCo+ '
        f'(`{PROXY_RECO_PLUS_CFG}`) trains the tiny-CLIP config\'s DeepLabv3+ student '
        '(the tiny CLIP ResNet backbone, as the paper\'s student is an ImageNet ResNet-101 '
        'separate from ReCo\'s CLIP; same recipe) on the proxy ReCo\'s pseudo-labels of the '
        f'200 flat training images, {extra.get("reco_plus_iters")} iterations, once per '
        f'seed {seeds}; its last checkpoint is scored. The ablation rows are those of '
        'results/reco_synthetic.md except the ResNet C4/C5 one.', '',
        '\n'.join(lines), '',
        f'Claim "{CLAIM}": ReCo+ {np.mean(plus):.2f} (mean of {len(plus)} seeds, spread '
        f'{spread:.2f}) vs ReCo {reco[0]:.2f}: margin {margin:+.2f}, '
        + ('shows (beyond the spread).' if shows else 'does not show beyond the spread.'), '',
        f"ReCo's pseudo-labels of the training images score {pl.get('train_mIoU_vs_gt', float('nan')):.2f} "
        f"mIoU (aAcc {pl.get('train_aAcc_vs_gt', float('nan')):.2f}) against their ground truth "
        '(read only for this line).', '',
        'Retrieval precision of ReCo (fraction of the k=10 retrieved images that contain '
        'the concept, from the pool\'s ground truth, for reporting only): '
        + ', '.join(f'{k} {v:.1f}' for k, v in sorted(prec.items())) + '.', '',
        'Schedule (ReCo+ training loss, logged every 50 iterations):', '',
        *[f'- {t}' for t in sched], '']
    if args.note:
        md += ['## Why', '', args.note, '']
    ablation = dict(
        claim=CLAIM,
        metrics=[dict(name='mIoU, 13 classes, flat val (%)', higher_is_better=True,
                      order=['ReCo+', 'ReCo'], arms={'ReCo+': plus, 'ReCo': reco},
                      deterministic=['ReCo'])],
        seeds=seeds,
        schedule=(f'ReCo training-free; ReCo+ {extra.get("reco_plus_iters")} iterations per '
                  'seed; ' + '; '.join(sched)),
        note=args.note or '')
    write_files(osp.join(args.results, 'reco_proxy.md'), '\n'.join(md),
                osp.join(args.results, 'reco_proxy.json'),
                dict(command=command, rows=rows, extra=extra, wall_seconds=wall,
                     threads=threads, means={'ReCo+': float(np.mean(plus)), 'ReCo': reco[0]},
                     ablation=ablation), indent=2, sort_keys=True,
                default=str)
    print('\n'.join(md), flush=True)
    return rows


def write_results(args, rows, extra, wall, threads, command=None):
    if command is None:
        command = command_line('bench_reco.py')
    lines = md_table(['method', 'mIoU', 'mAcc', 'aAcc', 'seconds'], [])
    for r in rows:
        secs = r.get('train_seconds', 0) + r['seconds']
        lines.append(f"| {r['method']} | {r['mIoU']:.2f} | {r['mAcc']:.2f} | "
                     f"{r['aAcc']:.2f} | {secs:.0f} |")
    prec = extra.get('reco_retrieval_precision', {})
    pl = extra.get('pseudo_labels', {})
    md = [
        '# ReCo and ReCo+ on the synthetic world (no pixel labels)', '',
        f'Produced by `{command.strip()}` ({threads} thread(s), wall time {wall:.0f} s).', '',
        'Flat style, val split (50 images, 13 classes), mIoU / mAcc / aAcc in %, '
        'mmseg IoUMetric for every row. No method reads a pixel label at test time: MaskCLIP '
        'and ReCo are training-free with the tiny CLIP (work_dirs/quickstart/tiny_clip.pt); '
        "ReCo retrieves from the flat training images as an unlabelled folder; ReCo+ trains "
        "a DeepLabv3+ on ReCo's pseudo-labels of those images. The seconds of ReCo include "
        'building its reference embeddings (and the index when it was not cached); ReCo+ '
        'seconds are training plus test.', '',
        'Disclosure: the synthetic ReCo config\'s feature level (C5) and k (10) were picked after '
        'comparing C4/C5 and k=10/20 on this val split (rows below); everything else is '
        'the paper\'s recipe as the authors\' code runs it (their column slices, contexts '
        'eliminated progressively, dense CRF) or was fixed beforehand. ReCo+ uses its last '
        'checkpoint; its pseudo-labels are made with the CRF, as the authors\'. The '
        'MaskCLIP config (another issue\'s) phrases the classes as the captions do '
        '(\'under the sky\', ...) and doubles the input, a phrasing and scale chosen on the '
        'train split\'s labels (results/maskclip_synthetic.md); ReCo uses the plain names '
        '(a row below gives ReCo with that phrasing).', '',
        'Rerun with the tiny CLIP that a fresh `make quickstart` trains; the earlier table '
        'came from an older tiny CLIP that a fresh clone does not reproduce.', '',
        '\n'.join(lines), '',
        f"ReCo's pseudo-labels of the 200 training images score {pl.get('train_mIoU_vs_gt', float('nan')):.2f} "
        f"mIoU against their ground truth (read only for this line).", '',
        'Retrieval precision of ReCo (fraction of the k=10 retrieved images that contain '
        'the concept, from the pool\'s ground truth, for reporting only): '
        + ', '.join(f'{k} {v:.1f}' for k, v in sorted(prec.items())) + '.', '',
    ]
    write_files(osp.join(args.results, 'reco_synthetic.md'), '\n'.join(md),
                osp.join(args.results, 'reco_synthetic.json'),
                dict(command=command, rows=rows, extra=extra, wall_seconds=wall,
                     threads=threads), indent=2, sort_keys=True, default=str)
    print('\n'.join(md), flush=True)


if __name__ == '__main__':
    main()
