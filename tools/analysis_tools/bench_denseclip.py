"""DenseCLIP measurements: the synthetic-world comparison, the RN50 latency
ratio and the RN50 parameter / FLOP counts.

    python tools/analysis_tools/bench_denseclip.py [--seeds 0 1] [--iters N]
        [--skip-synthetic] [--skip-ade]
    python tools/analysis_tools/bench_denseclip.py --clip proxy [--iters N]

1. Synthetic world (``data/synthetic``, the tiny CLIP of ``make
   quickstart``): DenseCLIP post-model, DenseCLIP pre-model and the CLIP +
   FPN baseline, each trained on the source style "flat" with the same
   schedule (configs/denseclip/*_clip-synth-rn_1xb8-*), for every seed;
   mIoU on the val split of the source and of every target style.
2. RN50 ADE20K configs at 512x512 on the CPU with random weights: latency
   of DenseCLIP (post and pre) divided by the CLIP-FPN baseline's, measured
   in the same run (interleaved repeats, medians), batch 1, threads as set
   by ``OMP_NUM_THREADS``.
3. Parameters and FLOPs of the RN50 configs next to the paper's table.

Writes ``results/denseclip_synthetic.md`` and ``.json`` (the command on
top).

``--clip proxy`` (issue #25) runs part 1 only, on the proxy CLIP ViT
(``clipdense-synth-vit8``, ``work_dirs/proxy/proxy_clip.pt``, made by
``make proxy-clip``): DenseCLIP post-model vs. CLIP + FPN
(configs/denseclip/*_clip-synth-vit8_1xb8-*), seeds 0 1 2 by default,
runs cached in ``work_dirs/denseclip_proxy``; it writes
``results/denseclip_proxy.md`` / ``.json`` with the training-loss curve of
every run and the ``ablation`` summary that
``tools/analysis_tools/ablations_table.py`` reads. The world and the tiny CLIP come from the quickstart's caches (never
regenerated here unless missing); training runs are cached in
``work_dirs/denseclip/bench/`` by a hash of their inputs.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

from clipdense.apis import synthetic_pipeline as sp
from clipdense.engine.bench_harness import (build_runner, loss_curve, make_log,
                                            write_results)

CFG_DIR = osp.join(sp.ROOT, 'configs', 'denseclip')
SYNTH = {
    'clipfpn': ('CLIP + FPN (baseline)',
                'clipfpn_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py'),
    'denseclip-post': ('DenseCLIP, post-model prompting',
                       'denseclip_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py'),
    'denseclip-pre': ('DenseCLIP, pre-model prompting',
                      'denseclip-pre_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py'),
}
# the same ablation on the proxy CLIP ViT (issue #25); the arm labels are the
# ones results/ablations.md uses
SYNTH_PROXY = {
    'clipfpn': ('CLIP + FPN (baseline)',
                'clipfpn_clip-synth-vit8_1xb8-120_synthetic-flat-128x128.py'),
    'denseclip-post': ('DenseCLIP (post-model prompting)',
                       'denseclip_clip-synth-vit8_1xb8-120_synthetic-flat-128x128.py'),
}
PROXY_WEIGHTS = 'work_dirs/proxy/proxy_clip.pt'
# --clip proxy trains four times the configs' 120 iterations: issue #25
# asks for schedules that converge, and at 120 the poly decay stopped the
# fourth proxy's runs with the loss near 0.33 (0.21-0.31 after 480;
# results/schedule_x1/ has the 120-iteration runs); picked after seeing the
# short schedule's ablation, as the only length tried, and kept whatever
# it showed (configs/synthetic_clip/README.md, seventh round)
PROXY_ITERS = 480
CLAIM = 'DenseCLIP > CLIP + FPN (segmentation)'
ADE = {
    'clipfpn': 'clipfpn_rn50-openai_8xb4-80k_ade20k-512x512.py',
    'denseclip-post': 'denseclip_rn50-openai_8xb4-80k_ade20k-512x512.py',
    'denseclip-pre': 'denseclip-pre_rn50-openai_8xb4-80k_ade20k-512x512.py',
}
# DenseCLIP README (ADE20K val, Semantic FPN, 80k): FLOPs (fvcore, 1024x1024
# input), params, single-scale mIoU. The paper's numbers, not ours.
PAPER_RN50 = {
    'clipfpn': dict(gflops=248.8, mparams=31.0, miou=39.6),
    'denseclip-post': dict(gflops=269.2, mparams=50.3, miou=43.5),
}


log = make_log('bench_denseclip')


# --------------------------------------------------------------------------
# 1. synthetic world
def synth_cfg(args, method, seed, weights):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(CFG_DIR, args.synth[method][1]))
    cfg.model.backbone.pretrained = weights
    if 'text_encoder' in cfg.model:
        cfg.model.text_encoder.pretrained = weights
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[dl].dataset.data_root = args.data_root
    full = cfg.train_cfg.max_iters
    iters = args.iters or full
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1  # evaluated below, on every style
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = max(iters // 4, 1)
    # a shorter (or longer) run keeps the schedule's shape: warm-up and
    # poly boundaries scale with the number of iterations
    for sch in cfg.param_scheduler:
        for k in ('begin', 'end'):
            if k in sch:
                sch[k] = min(max(int(round(sch[k] * iters / full)), 0), iters)
        if sch.get('end', iters) <= sch.get('begin', 0):
            sch['end'] = sch.get('begin', 0) + 1
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = osp.join(args.work_dir, f'{method}_seed{seed}')
    cfg.experiment_name = f'{method}_seed{seed}_{int(time.time())}'
    return cfg, iters


def train_one(args, method, seed, weights):
    """Train (or reuse a cached run); returns the model in eval mode and the
    training wall time."""
    import torch
    from mmengine.runner import load_checkpoint
    cfg, iters = synth_cfg(args, method, seed, weights)
    key = sp.file_hash(osp.join(CFG_DIR, args.synth[method][1]), weights,
                       extra=json.dumps([seed, iters, args.data_root]))
    stamp = osp.join(cfg.work_dir, 'done.json')
    if sp.cached(stamp, key):
        info = json.load(open(stamp))
        if osp.isfile(info['checkpoint']):
            log(f'{method} seed {seed}: cached ({info["checkpoint"]})')
            from clipdense.registry import MODELS
            model = MODELS.build(cfg.model)
            load_checkpoint(model, info['checkpoint'], map_location='cpu')
            return model.eval(), info['train_seconds'], stamp
    log(f'{method} seed {seed}: training {iters} iterations')
    t0 = time.perf_counter()
    runner = build_runner(cfg)
    runner.train()
    secs = time.perf_counter() - t0
    ckpt = osp.join(cfg.work_dir, f'iter_{iters}.pth')
    if not osp.isfile(ckpt):
        torch.save({'state_dict': runner.model.state_dict()}, ckpt)
    sp.write_stamp(stamp, key, checkpoint=ckpt, train_seconds=secs,
                   loss_curve=loss_curve(runner))
    log(f'{method} seed {seed}: trained in {secs:.0f}s')
    return runner.model.eval(), secs, stamp


def evaluate(model, data_root, style, cfg, limit=None):
    """mIoU (%) of ``model`` on the val split of one style."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmseg.evaluation import IoUMetric

    from clipdense.datasets import SyntheticSegDataset
    ds = SyntheticSegDataset(data_root=data_root, style=style, split='val',
                             pipeline=cfg.test_pipeline)
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = ds.metainfo
    bs = 8
    n = len(ds) if limit is None else min(limit, len(ds))
    with torch.no_grad():
        for i in range(0, n, bs):
            data = pseudo_collate([ds[j] for j in range(i, min(i + bs, n))])
            outs = model.test_step(data)
            metric.process(data, [o.to_dict() for o in outs])
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # IoUMetric prints a per-class table
    try:
        res = metric.compute_metrics(metric.results)
    finally:
        logger.setLevel(level)
    return float(res['mIoU'])


def score_map_miou(model, data_root, style, cfg, limit=None):
    """mIoU (%) of DenseCLIP's pixel-text score map alone (argmax over the
    ``K`` cosines, bilinearly resized to the image): how much class
    information the language side carries, without the FPN decoder."""
    import torch
    import torch.nn.functional as F
    from mmengine.dataset import pseudo_collate
    from mmseg.evaluation import IoUMetric

    from clipdense.datasets import SyntheticSegDataset
    ds = SyntheticSegDataset(data_root=data_root, style=style, split='val',
                             pipeline=cfg.test_pipeline)
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = ds.metainfo
    n = len(ds) if limit is None else min(limit, len(ds))
    with torch.no_grad():
        for i in range(0, n, 8):
            data = model.data_preprocessor(
                pseudo_collate([ds[j] for j in range(i, min(i + 8, n))]), False)
            inputs = data['inputs']
            _, score = model.extract_feat_and_score(inputs)
            pred = F.interpolate(score, size=inputs.shape[-2:], mode='bilinear',
                                 align_corners=False).argmax(1)
            metric.process(data, [dict(pred_sem_seg=dict(data=p[None]),
                                       gt_sem_seg=dict(data=d.gt_sem_seg.data))
                                  for p, d in zip(pred, data['data_samples'])])
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return float(metric.compute_metrics(metric.results)['mIoU'])
    finally:
        logger.setLevel(level)


def score_map_diagnostic(args, weights, styles):
    """Score-map mIoU of DenseCLIP (post) as built from the proxy (trained
    contexts and decoder absent: the language prior the method starts from)
    and after each seed's training; cached in the runs' stamps."""
    import torch

    from clipdense.registry import MODELS
    out = {}
    ekey = json.dumps(['score_map', styles, args.val_limit])
    cfg, _ = synth_cfg(args, 'denseclip-post', args.seeds[0], weights)
    stamp = osp.join(args.work_dir, 'score_map_at_init.json')
    key = sp.file_hash(osp.join(CFG_DIR, args.synth['denseclip-post'][1]), weights,
                       extra=ekey)
    if sp.cached(stamp, key):
        out['at init'] = json.load(open(stamp))['miou']
    else:
        torch.manual_seed(args.seeds[0])
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.eval()
        out['at init'] = {s: score_map_miou(model, args.data_root, s, cfg,
                                            args.val_limit) for s in styles}
        sp.write_stamp(stamp, key, miou=out['at init'])
    log('score map at init: ' + ', '.join(f'{s} {v:.2f}' for s, v in out['at init'].items()))
    for seed in args.seeds:
        model, _, st = train_one(args, 'denseclip-post', seed, weights)
        info = json.load(open(st))
        if info.get('score_key') != ekey:
            cfg, _ = synth_cfg(args, 'denseclip-post', seed, weights)
            info.update(score_key=ekey, score_map={
                s: score_map_miou(model, args.data_root, s, cfg, args.val_limit)
                for s in styles})
            sp.write_stamp(st, **info)
        out[f'trained, seed {seed}'] = info['score_map']
        log(f'score map seed {seed}: ' + ', '.join(
            f'{s} {v:.2f}' for s, v in info['score_map'].items()))
    return out


def run_synthetic(args):
    from clipdense.datasets.synthetic import spec
    # the quickstart's world and tiny CLIP: seed 0, reused from its caches
    qs = argparse.Namespace(data_root=args.data_root, work_dir=args.clip_work_dir,
                            seed=0, fresh=False, tiny=False)
    world = sp.step_world(qs)
    if args.clip == 'proxy':
        weights = args.proxy_weights
        if not osp.isfile(weights):
            raise FileNotFoundError(
                f'the proxy CLIP {weights} is missing; run `make proxy-clip` '
                '(about 40 minutes on 2 cores) or pass --proxy-weights')
    else:
        weights = sp.step_clip(qs, world)
    styles = [spec.SOURCE_STYLE] + list(spec.TARGET_STYLES)
    rows = {}
    for method in args.methods:
        per_seed = []
        for seed in args.seeds:
            model, secs, stamp = train_one(args, method, seed, weights)
            cfg, iters = synth_cfg(args, method, seed, weights)
            info = json.load(open(stamp))
            ekey = json.dumps([styles, args.val_limit])
            if info.get('eval_key') == ekey:  # evaluated before (same run)
                res = info['eval']
            else:
                res = {s: evaluate(model, args.data_root, s, cfg, args.val_limit)
                       for s in styles}
                info.update(eval_key=ekey, eval=res)
                sp.write_stamp(stamp, **info)
            log(f'{method} seed {seed}: ' +
                ', '.join(f'{s} {v:.2f}' for s, v in res.items()))
            per_seed.append(dict(seed=seed, miou=res, train_seconds=secs,
                                 iters=iters, loss_curve=info.get('loss_curve', [])))
        rows[method] = per_seed
    extra = {}
    if args.clip == 'proxy' and 'denseclip-post' in args.methods:
        extra['score_map'] = score_map_diagnostic(args, weights, styles)
    return dict(**extra,styles=styles, source=spec.SOURCE_STYLE, rows=rows,
                labels={m: args.synth[m][0] for m in args.methods},
                val_limit=args.val_limit,
                weights=osp.relpath(weights, sp.ROOT))


def mean_std(vals):
    m = statistics.mean(vals)
    s = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return m, s


def synthetic_table(syn):
    labels = syn.get('labels') or {m: SYNTH[m][0] for m in syn['rows']}
    styles, source = syn['styles'], syn['source']
    targets = [s for s in styles if s != source]
    head = ['method', 'seed', f'{source} (source)', *targets, 'targets mean',
            'train s']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for method, runs in syn['rows'].items():
        name = labels[method]
        for r in runs:
            t = [r['miou'][s] for s in targets]
            lines.append('| ' + ' | '.join(
                [name, str(r['seed']), f"{r['miou'][source]:.2f}",
                 *[f'{v:.2f}' for v in t], f'{statistics.mean(t):.2f}',
                 f"{r['train_seconds']:.0f}"]) + ' |')
        cells = []
        for s in styles:
            m, sd = mean_std([r['miou'][s] for r in runs])
            cells.append(f'**{m:.2f}** ± {sd:.2f}')
        tm, tsd = mean_std([statistics.mean(r['miou'][s] for s in targets)
                            for r in runs])
        lines.append('| ' + ' | '.join(
            [f'**{name}**', 'mean ± sd', *cells, f'**{tm:.2f}** ± {tsd:.2f}', '']) + ' |')
    # DenseCLIP minus the baseline, seed by seed (same seeds, same schedule)
    base = {r['seed']: r for r in syn['rows'].get('clipfpn', [])}
    notes = []
    for method, runs in syn['rows'].items():
        if method == 'clipfpn' or not base:
            continue
        d_src = [r['miou'][source] - base[r['seed']]['miou'][source]
                 for r in runs if r['seed'] in base]
        d_tgt = [statistics.mean(r['miou'][s] for s in targets) -
                 statistics.mean(base[r['seed']]['miou'][s] for s in targets)
                 for r in runs if r['seed'] in base]
        if d_src:
            notes.append(
                f'- {labels[method]} minus CLIP + FPN, per seed: source '
                + ', '.join(f'{d:+.2f}' for d in d_src)
                + f' (mean {statistics.mean(d_src):+.2f}); targets mean '
                + ', '.join(f'{d:+.2f}' for d in d_tgt)
                + f' (mean {statistics.mean(d_tgt):+.2f}) mIoU points.')
    return '\n'.join(lines) + ('\n\n' + '\n'.join(notes) if notes else '')


# --------------------------------------------------------------------------
# 2./3. RN50 ADE20K configs: latency ratio, parameters, FLOPs
def _weights_off(node):
    if isinstance(node, dict):
        for k in list(node):
            if k == 'pretrained':
                node[k] = None
            else:
                _weights_off(node[k])
    elif isinstance(node, (list, tuple)):
        for v in node:
            _weights_off(v)
    return node


def build_ade_model(method):
    from mmengine.config import Config

    from clipdense.registry import MODELS
    cfg = Config.fromfile(osp.join(CFG_DIR, ADE[method]))
    model_cfg = _weights_off(cfg.model.to_dict())
    # random weights as built (init_weights would only re-draw them)
    return MODELS.build(model_cfg).eval()


def _sdpa_flops(inputs, outputs):
    """``scaled_dot_product_attention``: ``q k^T`` and ``attn v`` (one
    multiply-add = one FLOP), for q ``(..., Lq, d)``, k ``(..., Lk, d)``,
    v ``(..., Lk, dv)``."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(inputs[i]) for i in range(3))
    batch = 1
    for n in q[:-2]:
        batch *= n
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def _native_mha_flops(inputs, outputs):
    """``_native_multi_head_attention`` (nn.MultiheadAttention's fused
    inference path): input projections, attention, output projection."""
    from mmengine.analysis.jit_handles import get_shape
    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    e = q[-1]
    b = 1
    for n in q[:-2]:
        b *= n
    lq, lk = q[-2], k[-2]
    return b * (lq * e * e + 2 * lk * e * e + 2 * lq * lk * e + lq * e * e)


def run_ade(args):
    import torch
    torch.manual_seed(0)
    models = {m: build_ade_model(m) for m in ADE}
    x = torch.randn(1, 3, 512, 512)
    out = dict(threads=torch.get_num_threads(), input=[1, 3, 512, 512])
    # latency: the first DenseCLIP call encodes the 150 class names (cached)
    # The machines are shared: wall time includes waiting for a core. The
    # ratio uses the process CPU time of each call (one thread: the compute
    # itself); wall times are reported next to it.
    first = {}
    with torch.no_grad():
        for m, model in models.items():
            t0 = time.process_time()
            model(x, mode='tensor')
            first[m] = time.process_time() - t0
        cpu = {m: [] for m in models}
        wall = {m: [] for m in models}
        for _ in range(args.repeats):
            for m, model in models.items():
                t0, w0 = time.process_time(), time.perf_counter()
                model(x, mode='tensor')
                cpu[m].append(time.process_time() - t0)
                wall[m].append(time.perf_counter() - w0)
    med = {m: statistics.median(v) for m, v in cpu.items()}
    med_wall = {m: statistics.median(v) for m, v in wall.items()}
    out['latency_cpu_s'] = med
    out['latency_wall_s'] = med_wall
    out['latency_all_cpu_s'] = cpu
    out['latency_all_wall_s'] = wall
    out['first_call_cpu_s'] = first
    out['ratio'] = {m: med[m] / med['clipfpn'] for m in models}
    out['ratio_wall'] = {m: med_wall[m] / med_wall['clipfpn'] for m in models}
    log('latency (median CPU s): ' + ', '.join(f'{m} {v:.3f}' for m, v in med.items()))
    # parameters and FLOPs (fvcore convention: one multiply-add = one FLOP),
    # 1024x1024 input as the DenseCLIP repository's get_flops.py
    from mmengine.analysis import FlopAnalyzer
    counts = {}
    for m, model in models.items():
        if m == 'denseclip-pre':
            continue
        params = sum(p.numel() for p in model.parameters())
        text = sum(p.numel() for p in model.text_encoder.parameters()) \
            if hasattr(model, 'text_encoder') else 0
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        with torch.no_grad():
            fa = FlopAnalyzer(model, (torch.randn(1, 3, 1024, 1024), ))
            # attention ops fvcore's table lacks (DenseCLIP's own count, with
            # explicit matmuls, includes them)
            fa.set_op_handle('aten::scaled_dot_product_attention', _sdpa_flops,
                             'aten::_native_multi_head_attention', _native_mha_flops)
            fa.unsupported_ops_warnings(False)
            fa.uncalled_modules_warnings(False)
            total = fa.total()
            by_module = fa.by_module()
        counts[m] = dict(
            mparams_all=params / 1e6, mparams_without_text=(params - text) / 1e6,
            mparams_trainable=trainable / 1e6, gflops_1024=total / 1e9,
            gflops_backbone=by_module.get('backbone', 0) / 1e9,
            gflops_context_decoder=by_module.get('context_decoder', 0) / 1e9,
            gflops_text_encoder=by_module.get('text_encoder', 0) / 1e9)
        log(f'{m}: {counts[m]}')
    out['counts'] = counts
    return out


def ade_tables(ade):
    lat, wall = ade['latency_cpu_s'], ade['latency_wall_s']
    lines = ['| model | CPU time per image (s) | **ratio to CLIP + FPN** | wall (s) | '
             'wall ratio | first call, CPU (s) |', '|' + ' --- |' * 6]
    for m in ADE:
        lines.append(f'| {m} | {lat[m]:.3f} | **{ade["ratio"][m]:.3f}** | {wall[m]:.3f} | '
                     f'{ade["ratio_wall"][m]:.3f} | {ade["first_call_cpu_s"][m]:.3f} |')
    lat_md = '\n'.join(lines)
    lines = ['| model | params, all (M) | params without text encoder (M) | '
             'trainable (M) | GFLOPs @1024² (ours) | paper GFLOPs | paper params (M) '
             '| paper mIoU |', '|' + ' --- |' * 8]
    for m, c in ade['counts'].items():
        p = PAPER_RN50.get(m, {})
        lines.append(
            f'| {m} | {c["mparams_all"]:.1f} | {c["mparams_without_text"]:.1f} | '
            f'{c["mparams_trainable"]:.1f} | {c["gflops_1024"]:.1f} | '
            f'{p.get("gflops", "")} | {p.get("mparams", "")} | {p.get("miou", "")} |')
    return lat_md, '\n'.join(lines)


# --------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # paths relative to the repository root (the quickstart's cache keys)
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--clip-work-dir', default='work_dirs/quickstart',
                        help='where the quickstart cached the tiny CLIP')
    parser.add_argument('--clip', choices=['tiny', 'proxy'], default='tiny',
                        help="'tiny': the quickstart's CLIP ResNet, all parts; "
                        "'proxy': the proxy CLIP ViT (issue #25), the synthetic "
                        'ablation only -> results/denseclip_proxy.md/.json')
    parser.add_argument('--proxy-weights', default=PROXY_WEIGHTS,
                        help='the proxy CLIP (open_clip format) for --clip proxy')
    parser.add_argument('--work-dir', default=None,
                        help='training runs (default work_dirs/denseclip/bench, '
                        'with --clip proxy work_dirs/denseclip_proxy)')
    parser.add_argument('--results', default='results')
    parser.add_argument('--methods', nargs='+', default=None, choices=list(SYNTH),
                        help='default: all three (tiny) / DenseCLIP post and '
                        'CLIP + FPN (proxy)')
    parser.add_argument('--val-limit', type=int, default=None,
                        help='evaluate on the first N val images of a style (smoke tests)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None,
                        help='training seeds (default 0 1; 0 1 2 with --clip proxy)')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the configs; '
                        f'{PROXY_ITERS} with --clip proxy)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed forward passes per model (latency)')
    parser.add_argument('--skip-synthetic', action='store_true')
    parser.add_argument('--skip-ade', action='store_true')
    args = parser.parse_args(argv)
    argv_used = sys.argv[1:] if argv is None else argv
    proxy = args.clip == 'proxy'
    args.synth = SYNTH_PROXY if proxy else SYNTH
    if args.methods is None:
        args.methods = list(args.synth)
    bad = [m for m in args.methods if m not in args.synth]
    if bad:
        parser.error(f'--methods {bad} have no config for --clip {args.clip}; '
                     f'choose from {list(args.synth)}')
    if args.seeds is None:
        args.seeds = [0, 1, 2] if proxy else [0, 1]
    if proxy and args.iters is None:
        args.iters = PROXY_ITERS
    if args.work_dir is None:
        args.work_dir = 'work_dirs/denseclip_proxy' if proxy else 'work_dirs/denseclip/bench'
    if proxy:
        if args.skip_synthetic:
            parser.error('--clip proxy runs the synthetic part only; drop --skip-synthetic')
        args.skip_ade = True
    os.chdir(sp.ROOT)

    t0 = time.perf_counter()
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    command = ('OMP_NUM_THREADS=' + os.environ.get('OMP_NUM_THREADS', '(unset)') +
               ' python tools/analysis_tools/bench_denseclip.py ' + ' '.join(argv_used))
    result = {}
    if not args.skip_synthetic:
        t1 = time.perf_counter()
        result['synthetic'] = run_synthetic(args)
        result['synthetic'].update(command=command,
                                   wall_seconds=time.perf_counter() - t1)
    if not args.skip_ade:
        t1 = time.perf_counter()
        result['ade20k_rn50'] = run_ade(args)
        result['ade20k_rn50'].update(command=command,
                                     wall_seconds=time.perf_counter() - t1)
    log(f'done in {time.perf_counter() - t0:.0f}s')
    if proxy:
        write_proxy(args, result['synthetic'])
    else:
        write(args, result)


def proxy_ablation(syn):
    """The issue-#25 summary (``ablation`` key) of a proxy run."""
    targets = [s for s in syn['styles'] if s != syn['source']]
    labels = syn['labels']
    arms = {labels[m]: [round(statistics.mean(r['miou'][s] for s in targets), 4)
                        for r in runs] for m, runs in syn['rows'].items()}
    order = [labels[m] for m in ('denseclip-post', 'clipfpn') if m in syn['rows']]
    order += [a for a in arms if a not in order]
    iters = next(iter(syn['rows'].values()))[0]['iters']
    curves = []
    for m, runs in syn['rows'].items():
        for r in runs:
            c = r.get('loss_curve') or []
            if len(c) >= 2:
                curves.append(f"{labels[m]} seed {r['seed']}: "
                              + ' -> '.join(f'{v:.3f}' for v in c[-3:]))
    schedule = (f'{iters} iterations of batch 8 (the tiny-CLIP recipe\'s shape: linear warm-up for '
                'the first eighth, then poly), the same for both arms; one evaluation '
                'after the last iteration. Training loss, mean over the last three '
                'tenths of the run: ' + '; '.join(curves))
    return dict(
        claim=CLAIM,
        metrics=[dict(name='mIoU, mean over target styles (%)', higher_is_better=True,
                      order=order, arms=arms)],
        seeds=[r['seed'] for r in next(iter(syn['rows'].values()))],
        schedule=schedule,
        note='')


def write_proxy(args, syn):
    """results/denseclip_proxy.md / .json (``--clip proxy``)."""
    ablation = proxy_ablation(syn)
    note_file = osp.join(args.results, 'denseclip_proxy_note.md')
    note = ''
    if osp.isfile(note_file):  # the analysis written by hand after the run
        note = open(note_file).read().strip()
    ablation['note'] = note.split('\n\n')[0].replace('\n', ' ') if note else ''
    iters = next(iter(syn['rows'].values()))[0]['iters']
    labels = syn['labels']
    curve_lines = ['| method | seed | ' + ' | '.join(
        f'{10 * i}-{10 * (i + 1)}%' for i in range(10)) + ' |',
        '|' + ' --- |' * 12]
    for m, runs in syn['rows'].items():
        for r in runs:
            c = r.get('loss_curve') or []
            curve_lines.append(f"| {labels[m]} | {r['seed']} | "
                               + ' | '.join(f'{v:.3f}' for v in c) + ' |')
    arms = ablation['metrics'][0]['arms']
    summary = []
    for a, v in arms.items():
        summary.append(f'- {a}: mean {statistics.mean(v):.2f}, per seed '
                       + ', '.join(f'{x:.2f}' for x in v)
                       + f' (spread max-min {max(v) - min(v):.2f})')
    order = ablation['metrics'][0]['order']
    if len(order) == 2:
        d = statistics.mean(arms[order[0]]) - statistics.mean(arms[order[1]])
        summary.append(f'- {order[0]} minus {order[1]}: {d:+.2f} mIoU points '
                       '(mean over targets, mean over seeds)')
    parts = [
        '# DenseCLIP vs. CLIP + FPN on the proxy CLIP ViT (issue #25)', '',
        f"Command: `{syn['command'].strip()}` (this invocation "
        f"{syn['wall_seconds']:.0f} s; cached training runs and evaluations are "
        'reused, their training time is in the "train s" column)', '',
        f'Claim: {CLAIM}. Proxy CLIP ViT (`{syn["weights"]}`, arch '
        'clipdense-synth-vit8: width 96, 4 blocks, patch 8, 16x16 tokens at 128 px) '
        f'for both towers, trained on the source style "{syn["source"]}" only, '
        f'{iters} iterations of batch 8, the same schedule for both models '
        '(configs/denseclip/*_clip-synth-vit8_1xb8-*: the tiny-CLIP configs\' recipe '
        'with the authors\' ViT settings, linear warm-up for the first eighth, then '
        'poly). mIoU (%) on the val split '
        f"({'all images' if not syn.get('val_limit') else 'first %d images' % syn['val_limit']}) "
        'of each style after the last iteration; per seed, then mean ± sample sd. '
        '"train s" is wall time on the shared 2-core machine.', '',
        synthetic_table(syn), '', *summary, '',
        '## Training loss (schedule)', '',
        'Total loss (decode + 0.4 x identity for DenseCLIP), mean over each tenth '
        'of the run:', '', *curve_lines, '']
    if syn.get('score_map'):
        targets = [s for s in syn['styles'] if s != syn['source']]
        head = ['score map of', *syn['styles'], 'targets mean']
        rows = [[k, *[f'{v[s]:.2f}' for s in syn['styles']],
                 f'{statistics.mean(v[s] for s in targets):.2f}']
                for k, v in syn['score_map'].items()]
        parts += ['## Diagnostic: the pixel-text score map alone', '',
                  'mIoU (%) of the argmax of DenseCLIP\'s K-class score map (the '
                  'cosines between the dense image embeddings and the prompted class '
                  'embeddings, bilinearly resized to 128 px), without the FPN decoder: '
                  '"at init" is the model as built from the proxy (contexts and context '
                  'decoder freshly initialised, seed ' + str(syn['rows']['denseclip-post'][0]['seed'])
                  + '), i.e. the language prior DenseCLIP starts from; "trained" after '
                  'the run above (the identity loss trains it). Chance level for 13 '
                  'classes is a few points.', '',
                  '| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head),
                  *['| ' + ' | '.join(r) + ' |' for r in rows], '']
    if note:
        parts += ['## Analysis', '', note, '']
    md = '\n'.join(parts) + '\n'
    data = dict(synthetic=syn, ablation=ablation)
    write_results(osp.join(args.results, 'denseclip_proxy.md'), md,
                  osp.join(args.results, 'denseclip_proxy.json'), data,
                  indent=2, sort_keys=True)
    print('\n' + md, flush=True)
    log(f'wrote {osp.join(args.results, "denseclip_proxy.md")}')


def write(args, result):
    # a part that was skipped keeps its previous result (and command)
    old = osp.join(args.results, 'denseclip_synthetic.json')
    if osp.isfile(old):
        try:
            prev = json.load(open(old))
        except ValueError:
            prev = {}
        for k in ('synthetic', 'ade20k_rn50'):
            if k not in result and k in prev:
                result[k] = prev[k]
    parts = ['# DenseCLIP measurements', '',
             'Written by `tools/analysis_tools/bench_denseclip.py`; each section '
             'shows the command that produced it.', '']
    if 'synthetic' in result:
        syn = result['synthetic']
        iters = next(iter(syn['rows'].values()))[0]['iters']
        parts += [
            '## Synthetic world: DenseCLIP vs. CLIP + FPN', '',
            f"Command: `{syn['command'].strip()}` (this invocation "
            f"{syn['wall_seconds']:.0f} s; training runs and evaluations cached by "
            'an earlier invocation with the same settings are reused, their training '
            'time is in the "train s" column)', '',
            f'Tiny CLIP ResNet (`{syn["weights"]}`, arch clipdense-synth-rn) for '
            f'both towers, trained on the source style "{syn["source"]}" only, '
            f'{iters} iterations of batch 8, the same schedule for every model '
            '(configs/denseclip/*_clip-synth-rn_1xb8-*; warm-up and poly scaled '
            'to the number of iterations). mIoU (%) on the val split '
            f"({'all images' if not syn.get('val_limit') else 'first %d images' % syn['val_limit']}) "
            'of each style; per seed, then mean ± sample sd over seeds. "train s" '
            'is wall time on the shared 2-core machine (other jobs running), not a '
            'speed measure.', '',
            synthetic_table(syn), '']
    if 'ade20k_rn50' in result:
        ade = result['ade20k_rn50']
        lat_md, cnt_md = ade_tables(ade)
        parts += [
            '## RN50 ADE20K configs at 512x512 on the CPU (random weights)', '',
            f"Command: `{ade['command'].strip()}` ({ade['wall_seconds']:.0f} s)", '',
            f'Batch 1, {ade["threads"]} thread(s), `mode=\'tensor\'`, no grad; '
            f'median of {len(next(iter(ade["latency_all_cpu_s"].values())))} interleaved '
            'repeats after one warm-up call. The ratio uses the process CPU time of '
            'each call (with one thread that is the compute; the wall time of a '
            'shared machine also counts waiting for a core). DenseCLIP post-model reuses the '
            'cached text embeddings (the warm-up call encodes the 150 names); '
            'pre-model runs the text tower on 150 sequences per image. Target for '
            'post-model: ratio <= 1.15.', '', lat_md, '',
            '## Parameters and FLOPs (RN50 configs)', '',
            'Ours: FLOPs counted by mmengine\'s FlopAnalyzer (fvcore\'s counter: '
            'one multiply-add = one FLOP) for a 1024x1024 input as in the DenseCLIP '
            'repository\'s get_flops.py; the text embeddings are cached, so the text '
            'tower is not in the per-image count (the paper\'s 20.4 G difference '
            'between DenseCLIP and the baseline matches the dense attention pool '
            'plus context decoder, i.e. its count did not include the text tower '
            'either). Params: all, without the (frozen) text encoder, and trainable '
            '(the paper\'s convention: its baseline\'s 31.0 M leaves out CLIP\'s '
            'attention pool, which the baseline does not use and clipdense keeps '
            'frozen in the backbone). '
            'Paper columns are the DenseCLIP README\'s numbers (ADE20K val, '
            'single-scale mIoU), not ours.', '', cnt_md, '']
    md = '\n'.join(parts) + '\n'
    write_results(osp.join(args.results, 'denseclip_synthetic.md'), md,
                  osp.join(args.results, 'denseclip_synthetic.json'), result,
                  indent=2, sort_keys=True)
    print('\n' + md, flush=True)
    log(f'wrote {osp.join(args.results, "denseclip_synthetic.md")}')


if __name__ == '__main__':
    main()
