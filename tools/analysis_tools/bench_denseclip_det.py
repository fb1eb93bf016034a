"""DenseCLIP detection vs. the CLIP baseline on the synthetic world: writes
``results/denseclip_det_synthetic.{md,json}`` (tiny CLIP) or, with
``--clip proxy``, ``results/denseclip_det_proxy.{md,json}`` (the proxy CLIP
ViT, issue #25, with the "ablation" summary).

    python tools/analysis_tools/bench_denseclip_det.py [--detectors mask-rcnn retinanet]
        [--epochs 6] [--seed 0]
    python tools/analysis_tools/bench_denseclip_det.py --clip proxy --detectors retinanet
        --epochs N --seeds 0 1 2

For each detector, two runs with the same schedule, data order and seed,
both from the world's tiny CLIP (``work_dirs/quickstart/tiny_clip.pt``, from
``make quickstart``; the world is ``data/synthetic``):

* **CLIP** - mmdet's detector on the tiny CLIP ResNet's stage maps;
* **DenseCLIP** - the same plus the pixel-text score map / tau on C5
  (learnable contexts, context decoder, auxiliary segmentation loss).

Configs: ``configs/denseclip_det/{clip,denseclip}-<det>_clip-synth-rn_*``
(128 px, 32-channel FPN). Each run trains on the "flat" style's 200 train
images and is evaluated with mmdet's CocoMetric on its 50 val images after
every epoch (one checkpoint per epoch); the table shows the first and the
last epoch. Both CLIP towers load the same weights; nothing else is
pretrained.

With ``--clip proxy`` both arms use the proxy CLIP ViT
(``clipdense-synth-vit8``, ``work_dirs/proxy/proxy_clip.pt`` from ``make
proxy-clip``) through ``configs/denseclip_det/{clip,denseclip}-<det>_clip-synth-vit8_*``
(RetinaNet only: a ViT detector is clipdense's extension, see the configs'
README), for every seed of ``--seeds``.
"""
import argparse
import json
import os.path as osp
import time

from clipdense.engine.bench_harness import (build_runner, command_line, make_log, repo_root,
                                            write_results)
ROOT = repo_root(__file__)
CONFIG_DIR = osp.join(ROOT, 'configs', 'denseclip_det')
CONFIGS = {
    'tiny': '{variant}-{det}_clip-synth-rn_1xb4-6e_synthetic-coco-128x128.py',
    'proxy': '{variant}-{det}_clip-synth-vit8_1xb4-{proxy_epochs}e_synthetic-coco-128x128.py',
}
PROXY_EPOCHS = 20  # the schedule in the proxy configs' names
ARM = {'clip': 'CLIP', 'denseclip': 'DenseCLIP'}
CLAIM = 'DenseCLIP det > CLIP det'
VARIANTS = ('clip', 'denseclip')
METRICS = {'bbox': ('coco/bbox_mAP', 'coco/bbox_mAP_50'),
           'segm': ('coco/segm_mAP', 'coco/segm_mAP_50')}


log = make_log('bench_denseclip_det', stderr=True)


def config_path(clip, det, variant):
    return osp.join(CONFIG_DIR, CONFIGS[clip].format(variant=variant, det=det,
                                                     proxy_epochs=PROXY_EPOCHS))


def run_one(args, det, variant, weights, seed=None):
    """Train one config; returns the per-epoch val metrics and timings."""
    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook

    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    torch.set_num_threads(args.threads)
    seed = args.seed if seed is None else seed
    path = config_path(args.clip, det, variant)
    cfg = Config.fromfile(path)
    name = f'{variant}-{det}' + (f'-seed{seed}' if args.clip == 'proxy' else '')
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.experiment_name = f'{name}_{int(time.time())}'
    cfg.model.backbone.pretrained = weights
    if 'text_encoder' in cfg.model:
        cfg.model.text_encoder.pretrained = weights
    data_root = args.data_root.rstrip('/') + '/'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = data_root
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = osp.join(data_root, 'flat/annotations/instances_val.json')
    cfg.train_cfg.max_epochs = args.epochs
    cfg.param_scheduler[-1].end = args.epochs
    cfg.param_scheduler[-1].milestones = [args.epochs - 1]
    cfg.randomness = dict(seed=seed)
    cfg.default_hooks.logger.interval = 25
    cfg.log_level = 'INFO'

    epochs = []

    class Recorder(Hook):
        priority = 'LOWEST'

        def __init__(self):
            self.t0 = time.perf_counter()

        def after_val_epoch(self, runner, metrics=None):
            row = {'epoch': runner.epoch,
                   'train_s': round(time.perf_counter() - self.t0, 1)}
            for task, keys in METRICS.items():
                for k in keys:
                    if metrics and k in metrics:
                        row[k.split('/')[1]] = round(float(metrics[k]) * 100, 2)
            epochs.append(row)
            log(f'{name} epoch {runner.epoch}: ' +
                ', '.join(f'{k} {v}' for k, v in row.items() if k != 'epoch'))

    runner = build_runner(cfg)
    runner.register_hook(Recorder())
    t0 = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - t0
    n_params = sum(p.numel() for p in runner.model.parameters())
    n_train = sum(p.numel() for p in runner.model.parameters() if p.requires_grad)
    return dict(detector=det, variant=variant, seed=seed, config=osp.relpath(path, ROOT),
                epochs=epochs, seconds=round(seconds, 1), params=n_params,
                trainable_params=n_train,
                last_checkpoint=osp.relpath(
                    osp.join(cfg.work_dir, f'epoch_{args.epochs}.pth'), ROOT))


def fmt(v):
    return '-' if v is None else f'{v:.2f}'


def write(args, runs, command):
    lines = [
        '# DenseCLIP detection on the synthetic world', '',
        'Produced by', '', '```', command, '```', '',
        f'Tiny CLIP ResNet (`clipdense-synth-rn`, `work_dirs/quickstart/tiny_clip.pt`), '
        f'128 px, 200 train / 50 val images of the "flat" style, 10 thing classes, '
        f'{args.epochs} epochs at batch 4, seed {args.seed}, {args.threads} CPU thread(s) per run. mmdet CocoMetric '
        'on val after the first and the last epoch (AP x100). CLIP = mmdet detector on '
        "the CLIP ResNet's stage maps; DenseCLIP = the same plus the pixel-text score "
        'map / tau on C5, learnable contexts, context decoder and the auxiliary '
        'segmentation loss (its frozen text tower is most of its parameters). One '
        'seed: differences of a point or two are within run-to-run noise at this '
        'scale. Seconds are wall time on a shared 2-core machine, runs in parallel '
        'with `--jobs`.', '',
        '| detector | model | bbox mAP first | bbox mAP last | bbox mAP50 last | '
        'segm mAP first | segm mAP last | segm mAP50 last | params (trainable) | train+val s |',
        '|---|---|---|---|---|---|---|---|---|---|']
    for r in runs:
        first, last = (r['epochs'][0], r['epochs'][-1]) if r['epochs'] else ({}, {})
        lines.append(
            f"| {r['detector']} | {'DenseCLIP' if r['variant'] == 'denseclip' else 'CLIP'} "
            f"| {fmt(first.get('bbox_mAP'))} | {fmt(last.get('bbox_mAP'))} "
            f"| {fmt(last.get('bbox_mAP_50'))} | {fmt(first.get('segm_mAP'))} "
            f"| {fmt(last.get('segm_mAP'))} | {fmt(last.get('segm_mAP_50'))} "
            f"| {r['params'] / 1e6:.2f}M ({r['trainable_params'] / 1e6:.2f}M) "
            f"| {r['seconds']:.0f} |")
    lines += ['', 'Per epoch (bbox mAP / segm mAP):', '']
    for r in runs:
        series = ', '.join(f"{e['epoch']}: {fmt(e.get('bbox_mAP'))} / {fmt(e.get('segm_mAP'))}"
                           for e in r['epochs'])
        lines.append(f"- {r['variant']}-{r['detector']}: {series}")
    write_results(args.out + '.md', '\n'.join(lines) + '\n', args.out + '.json',
                  dict(command=command, epochs=args.epochs, seed=args.seed,
                       threads=args.threads, runs=runs), atomic=False, indent=1)
    log(f'wrote {args.out}.md / .json')


def _last(run, key='bbox_mAP'):
    return run['epochs'][-1].get(key) if run['epochs'] else None


def ablation_summary(args, runs):
    """The issue-#25 summary (``"ablation"``, read by ablations_table.py)."""
    arms = {}
    for variant in ('denseclip', 'clip'):
        vals = [_last(r) for s in args.seeds for r in runs
                if r['variant'] == variant and r['seed'] == s]
        if vals:
            arms[ARM[variant]] = vals
    tail = []
    for variant in ('denseclip', 'clip'):
        per_epoch = [[e.get('bbox_mAP') for e in r['epochs']] for r in runs
                     if r['variant'] == variant]
        if per_epoch and all(len(p) == args.epochs for p in per_epoch):
            means = [sum(p[e] for p in per_epoch) / len(per_epoch)
                     for e in range(max(0, args.epochs - 3), args.epochs)]
            tail.append(f"{ARM[variant]} {' / '.join(f'{m:.1f}' for m in means)}")
    det = '/'.join(sorted({r['detector'] for r in runs}))
    return dict(
        claim=CLAIM,
        metrics=[dict(name=f'{det} bbox mAP on val, last epoch (COCO, x100)',
                      higher_is_better=True, order=['DenseCLIP', 'CLIP'], arms=arms)],
        seeds=list(args.seeds),
        schedule=(f'{args.epochs} epochs x 50 iterations at batch 4 (lr step x0.1 '
                  f'before the last epoch); mean bbox mAP of the last 3 epochs: '
                  + '; '.join(tail)),
        note=args.note)


def write_proxy(args, runs, command):
    import statistics
    summary = ablation_summary(args, runs)
    lines = [
        '# DenseCLIP detection on the proxy CLIP (issue #25)', '',
        'Produced by', '', '```', command, '```', '',
        'Proxy CLIP ViT (`clipdense-synth-vit8`, `work_dirs/proxy/proxy_clip.pt`: '
        'width 96, 4 blocks, patch 8, a 16x16 token grid at 128 px; '
        '`results/proxy_clip.md`), RetinaNet, 128 px, 200 train / 50 val images of '
        f'the "flat" style, 10 thing classes, {args.epochs} epochs at batch 4 '
        '(50 iterations each), the recipe of the tiny-CLIP configs '
        '(`results/denseclip_det_synthetic.md`) with the schedule scaled; '
        f'training seeds {", ".join(map(str, args.seeds))}; {args.threads} CPU thread(s) '
        'per run. The ViT detector is clipdense\'s extension (DenseCLIP\'s authors '
        'ran detection with ResNets only): the 4 blocks make a simple feature pyramid '
        '(strides 2/4/8/16), the FPN starts at stride 8 (P3-P7, the ResNet config\'s '
        'anchors), and DenseCLIP concatenates the score map / tau (16x16) to the '
        'stride-8 level. CLIP = the same detector without the score map, contexts, '
        'context decoder and auxiliary segmentation loss. Metric: mmdet CocoMetric '
        'bbox mAP (x100) on val after the last epoch.', '',
        '| model | ' + ' | '.join(f'seed {s}' for s in args.seeds) +
        ' | mean | spread (max-min) | params (trainable) | train+val s (mean) |',
        '|---|' + '---|' * (len(args.seeds) + 4)]
    metric = summary['metrics'][0]
    for arm, vals in metric['arms'].items():
        rs = [r for r in runs if ARM[r['variant']] == arm]
        ok = [v for v in vals if v is not None]
        mean = statistics.mean(ok) if ok else None
        spread = (max(ok) - min(ok)) if ok else None
        lines.append(
            f'| {arm} | ' + ' | '.join(fmt(v) for v in vals) +
            f' | {fmt(mean)} | {fmt(spread)} '
            f"| {rs[0]['params'] / 1e6:.2f}M ({rs[0]['trainable_params'] / 1e6:.2f}M) "
            f"| {statistics.mean(r['seconds'] for r in rs):.0f} |")
    arms = metric['arms']
    if len(arms) == 2 and all(None not in v for v in arms.values()):
        d, c = arms['DenseCLIP'], arms['CLIP']
        margin = statistics.mean(d) - statistics.mean(c)
        spread = max(max(d) - min(d), max(c) - min(c))
        lines += ['', f'DenseCLIP - CLIP: {margin:+.2f} bbox mAP (mean over seeds); '
                  f'largest seed spread {spread:.2f}.']
    lines += ['', f"Schedule: {summary['schedule']}.", '',
              'Per seed and epoch (bbox mAP / bbox mAP50):', '']
    for r in runs:
        series = ', '.join(f"{e['epoch']}: {fmt(e.get('bbox_mAP'))} / "
                           f"{fmt(e.get('bbox_mAP_50'))}" for e in r['epochs'])
        lines.append(f"- {ARM[r['variant']]} seed {r['seed']}: {series}")
    if args.note:
        lines += ['', '## Note', '', args.note]
    if args.md_extra and osp.isfile(args.md_extra):
        with open(args.md_extra) as f:
            lines += ['', f.read().rstrip()]
    write_results(args.out + '.md', '\n'.join(lines) + '\n', args.out + '.json',
                  dict(command=command, clip='proxy', epochs=args.epochs,
                       seeds=list(args.seeds), threads=args.threads, runs=runs,
                       mean_bbox_mAP={a: round(statistics.mean(v), 2)
                                      for a, v in metric['arms'].items()
                                      if v and None not in v},
                       ablation=summary), atomic=False, indent=1)
    log(f'wrote {args.out}.md / .json')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--detectors', nargs='+', default=None,
                        choices=['mask-rcnn', 'retinanet'],
                        help='default mask-rcnn (tiny), retinanet (proxy)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=VARIANTS)
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--clip', default='tiny', choices=sorted(CONFIGS),
                        help="'tiny': the quickstart CLIP ResNet (results/"
                        "denseclip_det_synthetic); 'proxy': the proxy CLIP ViT "
                        '(issue #25, results/denseclip_det_proxy, RetinaNet)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None,
                        help='training seeds (--clip proxy; default 0 1 2)')
    parser.add_argument('--proxy-weights',
                        default=osp.join(ROOT, 'work_dirs', 'proxy', 'proxy_clip.pt'),
                        help='the proxy CLIP (make proxy-clip)')
    parser.add_argument('--note', default='',
                        help='--clip proxy: the sentence of the summary\'s "note"')
    parser.add_argument('--md-extra', default=None,
                        help='--clip proxy: a markdown file appended to the .md')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at the same time (processes)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per run')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'synthetic'))
    parser.add_argument('--clip-work-dir', default=osp.join(ROOT, 'work_dirs', 'quickstart'),
                        help='where make quickstart left tiny_clip.pt')
    parser.add_argument('--work-dir', default=None,
                        help='default work_dirs/denseclip_det (tiny), '
                        'work_dirs/denseclip_det_proxy (proxy)')
    parser.add_argument('--out', default=None,
                        help='default results/denseclip_det_synthetic (tiny), '
                        'results/denseclip_det_proxy (proxy)')
    parser.add_argument('--render-only', action='store_true',
                        help='rewrite the .md from the .json of the last run')
    args = parser.parse_args(argv)
    proxy = args.clip == 'proxy'
    suffix = 'proxy' if proxy else 'synthetic'
    args.out = args.out or osp.join(ROOT, 'results', f'denseclip_det_{suffix}')
    args.work_dir = args.work_dir or osp.join(
        ROOT, 'work_dirs', 'denseclip_det_proxy' if proxy else 'denseclip_det')
    args.detectors = args.detectors or (['retinanet'] if proxy else ['mask-rcnn'])
    if proxy:
        args.seeds = args.seeds or [0, 1, 2]
        if args.detectors != ['retinanet']:
            parser.error('--clip proxy has RetinaNet configs only: use --detectors retinanet')
    elif args.seeds:
        parser.error('--seeds is for --clip proxy; the tiny-CLIP bench takes --seed')
    if args.render_only:
        with open(args.out + '.json') as f:
            saved = json.load(f)
        if proxy:
            args.epochs, args.seeds = saved['epochs'], saved['seeds']
            args.threads = saved.get('threads', args.threads)
            args.note = args.note or saved.get('ablation', {}).get('note', '')
            write_proxy(args, saved['runs'], saved['command'])
            return saved['runs']
        args.epochs, args.seed = saved['epochs'], saved['seed']
        args.threads = saved.get('threads', args.threads)
        write(args, saved['runs'], saved['command'])
        return saved['runs']
    command = command_line('bench_denseclip_det.py', argv)

    from clipdense.apis import synthetic_pipeline as sp
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    world_args = argparse.Namespace(data_root=args.data_root, work_dir=args.clip_work_dir,
                                    seed=0, fresh=False)
    world = sp.step_world(world_args)
    if proxy:
        weights = args.proxy_weights
        if not osp.isfile(weights):
            raise FileNotFoundError(f'no proxy CLIP at {weights}: run `make proxy-clip` '
                                    '(or pass --proxy-weights)')
        jobs = [(det, variant, seed) for seed in args.seeds for det in args.detectors
                for variant in args.variants]
        out = write_proxy
    else:
        weights = sp.step_clip(world_args, world)
        jobs = [(det, variant, args.seed) for det in args.detectors
                for variant in args.variants]
        out = write
    if args.jobs <= 1:
        runs = []
        for det, variant, seed in jobs:
            log(f'training {variant}-{det} seed {seed} for {args.epochs} epochs')
            runs.append(run_one(args, det, variant, weights, seed))
            out(args, runs, command)
        return runs
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    log(f'training {len(jobs)} runs, {args.jobs} at a time, for {args.epochs} epochs')
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context('spawn')) as pool:
        futures = [pool.submit(run_one, args, det, variant, weights, seed)
                   for det, variant, seed in jobs]
        runs = [f.result() for f in futures]
    out(args, runs, command)
    return runs


if __name__ == '__main__':
    main()
