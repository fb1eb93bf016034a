"""DenseCLIP detection vs. the CLIP baseline on the synthetic world: writes
``results/denseclip_det_synthetic.{md,json}``.

    python tools/analysis_tools/bench_denseclip_det.py [--detectors mask-rcnn retinanet]
        [--epochs 6] [--seed 0]

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
"""
import argparse
import json
import os.path as osp
import time

from clipdense.engine.bench_harness import (build_runner, command_line, make_log, repo_root,
                                            write_results)
ROOT = repo_root(__file__)
CONFIG_DIR = osp.join(ROOT, 'configs', 'denseclip_det')
CONFIG = '{variant}-{det}_clip-synth-rn_1xb4-6e_synthetic-coco-128x128.py'
VARIANTS = ('clip', 'denseclip')
METRICS = {'bbox': ('coco/bbox_mAP', 'coco/bbox_mAP_50'),
           'segm': ('coco/segm_mAP', 'coco/segm_mAP_50')}


log = make_log('bench_denseclip_det', stderr=True)


def run_one(args, det, variant, weights):
    """Train one config; returns the per-epoch val metrics and timings."""
    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook

    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    torch.set_num_threads(args.threads)
    path = osp.join(CONFIG_DIR, CONFIG.format(variant=variant, det=det))
    cfg = Config.fromfile(path)
    name = f'{variant}-{det}'
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
    cfg.randomness = dict(seed=args.seed)
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
    return dict(detector=det, variant=variant, config=osp.relpath(path, ROOT),
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--detectors', nargs='+', default=['mask-rcnn'],
                        choices=['mask-rcnn', 'retinanet'])
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=VARIANTS)
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at the same time (processes)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per run')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'synthetic'))
    parser.add_argument('--clip-work-dir', default=osp.join(ROOT, 'work_dirs', 'quickstart'),
                        help='where make quickstart left tiny_clip.pt')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'denseclip_det'))
    parser.add_argument('--out', default=osp.join(ROOT, 'results', 'denseclip_det_synthetic'))
    parser.add_argument('--render-only', action='store_true',
                        help='rewrite the .md from the .json of the last run')
    args = parser.parse_args(argv)
    if args.render_only:
        with open(args.out + '.json') as f:
            saved = json.load(f)
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
    weights = sp.step_clip(world_args, world)
    jobs = [(det, variant) for det in args.detectors for variant in args.variants]
    if args.jobs <= 1:
        runs = []
        for det, variant in jobs:
            log(f'training {variant}-{det} for {args.epochs} epochs')
            runs.append(run_one(args, det, variant, weights))
            write(args, runs, command)
        return runs
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    log(f'training {len(jobs)} runs, {args.jobs} at a time, for {args.epochs} epochs')
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context('spawn')) as pool:
        futures = [pool.submit(run_one, args, det, variant, weights)
                   for det, variant in jobs]
        runs = [f.result() for f in futures]
    write(args, runs, command)
    return runs


if __name__ == '__main__':
    main()
