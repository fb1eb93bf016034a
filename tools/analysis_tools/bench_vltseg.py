"""VLTSeg's claim in miniature on the synthetic world: a CLIP-initialised
backbone under Mask2Former, trained on the source style only, generalizes
to unseen target styles better than the same backbone from random
initialisation (Hümmer et al., ACCV 2024).

    python tools/analysis_tools/bench_vltseg.py [--train-seeds 0 1 2] [--iters N]
        [--out results/vltseg_synthetic]
    python tools/analysis_tools/bench_vltseg.py --clip proxy [--iters N]

1. reuses the synthetic world and the tiny CLIP of ``make quickstart``
   (``data/synthetic``, ``work_dirs/quickstart/tiny_clip.pt``);
2. trains ``configs/vltseg/vltseg_clip-synth-rn_...`` (tiny CLIP init) and
   ``vltseg_synth-rn-scratch_...`` (random init), same schedule, on the
   source style "flat", once per training seed (cached in
   ``work_dirs/vltseg/<run>``, keyed by the resolved config, the weights
   and the iterations);
3. evaluates each checkpoint on every style with
   ``tools/analysis_tools/dg_benchmark.py`` (source flat; targets
   textured, night, fog) and writes ``<out>.md`` / ``<out>.json`` (every
   run, the mean over seeds, per-class IoU) with the command on top.

``--clip proxy`` (issue #25) runs the same ablation on the proxy CLIP ViT
(``clipdense-synth-vit8``, ``work_dirs/proxy/proxy_clip.pt``, made by
``make proxy-clip``): ``configs/vltseg/vltseg_clip-synth-vit8_...`` vs.
``vltseg_synth-vit8-scratch_...``, runs cached in
``work_dirs/vltseg_proxy``, results in ``results/vltseg_proxy.md`` /
``.json`` with every run's training-loss curve and the ``ablation``
summary that ``tools/analysis_tools/ablations_table.py`` reads.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import dg_benchmark  # noqa: E402
from clipdense.engine.bench_harness import (build_runner, cache_key, loss_curve,
                                            make_log, write_results)

CONFIGS = (
    ('CLIP init (tiny CLIP RN)', 'clip',
     'configs/vltseg/vltseg_clip-synth-rn_1xb4-300_synthetic-flat-128x128.py'),
    ('random init (same RN)', 'scratch',
     'configs/vltseg/vltseg_synth-rn-scratch_1xb4-300_synthetic-flat-128x128.py'),
)

# the same ablation on the proxy CLIP ViT (issue #25); the arm labels are the
# ones results/ablations.md uses
CONFIGS_PROXY = (
    ('CLIP init', 'clip',
     'configs/vltseg/vltseg_clip-synth-vit8_1xb4-150_synthetic-flat-128x128.py'),
    ('random init', 'scratch',
     'configs/vltseg/vltseg_synth-vit8-scratch_1xb4-150_synthetic-flat-128x128.py'),
)
PROXY_WEIGHTS = 'work_dirs/proxy/proxy_clip.pt'
# --clip proxy trains four times the configs' 150 iterations: issue #25
# asks for schedules that converge, and at 150 the loss of the fourth proxy
# still fell in every tenth (results/schedule_x1/); picked after seeing the
# short schedule's ablation, as the only length tried, and kept whatever
# it showed (configs/synthetic_clip/README.md, seventh round)
PROXY_ITERS = 600
CLAIM = 'CLIP init > random init under style shift (VLTSeg)'


log = make_log('bench_vltseg')


def _key(*parts):
    return cache_key(*parts, encode='str')


def build_cfg(config, data_root, clip_weights, iters):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    if cfg.model.backbone.get('pretrained'):
        cfg.model.backbone.pretrained = clip_weights
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[dl].dataset.data_root = data_root
    for t in cfg.dg_targets.values():
        t['data_root'] = data_root
    if iters is not None:
        cfg.train_cfg.max_iters = iters
        cfg.train_cfg.val_interval = iters
        cfg.default_hooks.checkpoint.interval = iters
        for sch in cfg.param_scheduler:
            sch['begin'] = min(sch.get('begin', 0), iters // 10)
            sch['end'] = iters
    return cfg


def train(cfg, config, work_dir, weights, iters, fresh=False):
    """Train (or reuse) one run; returns (checkpoint, train seconds)."""

    from clipdense.engine.checkpoint import (atomic_write_bytes,
                                             find_resumable_checkpoint)
    key = _key(cfg.pretty_text, weights or 'random', iters)
    stamp = osp.join(work_dir, 'done.json')
    if not fresh and osp.isfile(stamp):
        info = json.load(open(stamp))
        if info.get('key') == key and osp.isfile(info['checkpoint']):
            log(f'{config}: cached ({info["checkpoint"]})')
            return (info['checkpoint'], info.get('train_seconds'),
                    info.get('loss_curve', []))
    cfg.work_dir = work_dir
    cfg.experiment_name = f'train_{int(time.time())}'
    t0 = time.perf_counter()
    runner = build_runner(cfg)
    runner.train()
    secs = time.perf_counter() - t0
    ckpt = find_resumable_checkpoint(work_dir)
    curve = loss_curve(runner)
    atomic_write_bytes(stamp, json.dumps(dict(
        key=key, checkpoint=ckpt, train_seconds=round(secs, 1),
        loss_curve=curve)).encode())
    return ckpt, round(secs, 1), curve


def fmt(v):
    return '' if v is None else f'{v:.2f}'


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def proxy_ablation(args, summary, rows):
    """The issue-#25 ``ablation`` summary and the md's extra sections
    (per-arm means, loss curves, the hand-written analysis of
    ``<out>_note.md`` when it exists)."""
    arms = {sm['model']: [round(r['target_mean_mIoU'], 4) for r in rows
                          if r['tag'] == sm['tag']] for sm in summary}
    order = [sm['model'] for sm in summary]  # CLIP init first: the claim
    curves = [f"{r['model']} seed {r['seed']}: "
              + ' -> '.join(f'{v:.3f}' for v in r['loss_curve'][-3:])
              for r in rows if len(r.get('loss_curve') or []) >= 2]
    iters = rows[0]['iters']
    note_file = args.out + '_note.md'
    note = open(note_file).read().strip() if osp.isfile(note_file) else ''
    ablation = dict(
        claim=CLAIM,
        metrics=[dict(name='mIoU, mean over target styles (%)',
                      higher_is_better=True, order=order, arms=arms)],
        seeds=list(args.train_seeds),
        schedule=(f'{iters} iterations of batch {rows[0]["batch_size"]} (the '
                  'tiny-CLIP recipe\'s shape: constant lr for the first tenth, then '
                  'poly), the same for both arms; one evaluation after the '
                  'last iteration. Training loss, mean over the last three '
                  'tenths of the run: ' + '; '.join(curves)),
        note=note.split('\n\n')[0].replace('\n', ' ') if note else '')
    extra = ['', '## Summary', '']
    for a, v in arms.items():
        extra.append(f'- {a}: mean {sum(v) / len(v):.2f}, per seed '
                     + ', '.join(f'{x:.2f}' for x in v)
                     + f' (spread max-min {max(v) - min(v):.2f})')
    n = max(len(r.get('loss_curve') or []) for r in rows)
    extra += ['', '## Training loss (schedule)', '',
              'Total Mask2Former loss (all decoder layers), mean over each '
              'tenth of the run:', '',
              '| backbone init | seed | ' + ' | '.join(
                  f'tenth {i + 1}' for i in range(n)) + ' |',
              '|' + ' --- |' * (n + 2)]
    for r in rows:
        extra.append(f"| {r['model']} | {r['seed']} | " + ' | '.join(
            f'{v:.3f}' for v in r.get('loss_curve') or []) + ' |')
    if note:
        extra += ['', '## Analysis', '', note]
    return ablation, extra


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--quickstart-dir', default='work_dirs/quickstart',
                        help='where make quickstart keeps the tiny CLIP')
    parser.add_argument('--clip', choices=['tiny', 'proxy'], default='tiny',
                        help="'tiny': the quickstart's CLIP ResNet; 'proxy': the "
                        'proxy CLIP ViT (issue #25) -> results/vltseg_proxy')
    parser.add_argument('--proxy-weights', default=PROXY_WEIGHTS,
                        help='the proxy CLIP (open_clip format) for --clip proxy')
    parser.add_argument('--work-dir', default=None,
                        help='training runs (default work_dirs/vltseg, with '
                        '--clip proxy work_dirs/vltseg_proxy)')
    parser.add_argument('--out', default=None,
                        help='output path without extension (default '
                        'results/vltseg_synthetic, with --clip proxy '
                        'results/vltseg_proxy)')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the configs; '
                        f'{PROXY_ITERS} with --clip proxy)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic world and tiny CLIP '
                        '(their caches)')
    parser.add_argument('--train-seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='one segmentor training run per seed and model')
    parser.add_argument('--fresh', action='store_true',
                        help='retrain the segmentors (never the world/CLIP)')
    parser.add_argument('--models', nargs='+', default=['clip', 'scratch'],
                        choices=['clip', 'scratch'],
                        help='train/evaluate only these (the results files '
                        'are written only when both are run)')
    args = parser.parse_args(argv)
    proxy = args.clip == 'proxy'
    configs = CONFIGS_PROXY if proxy else CONFIGS
    if proxy and args.iters is None:
        args.iters = PROXY_ITERS
    if args.work_dir is None:
        args.work_dir = 'work_dirs/vltseg_proxy' if proxy else 'work_dirs/vltseg'
    if args.out is None:
        args.out = 'results/vltseg_proxy' if proxy else 'results/vltseg_synthetic'
    os.chdir(ROOT)
    t0 = time.perf_counter()

    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from clipdense.apis import synthetic_pipeline as sp
    wargs = argparse.Namespace(data_root=args.data_root,
                               work_dir=args.quickstart_dir, seed=args.seed,
                               fresh=False)
    log('synthetic world and tiny CLIP (reused from make quickstart)')
    world = sp.step_world(wargs)
    clip_weights = None
    if proxy and 'clip' in args.models:
        clip_weights = args.proxy_weights
        if not osp.isfile(clip_weights):
            raise FileNotFoundError(
                f'the proxy CLIP {clip_weights} is missing; run `make proxy-clip` '
                '(about 40 minutes on 2 cores) or pass --proxy-weights')
    elif 'clip' in args.models:
        done = osp.join(args.quickstart_dir, 'tiny_clip', 'done.json')
        if not osp.isfile(done):
            raise FileNotFoundError(
                f'the tiny CLIP is not trained yet ({done} is missing); run '
                '`make quickstart` first (about 11 minutes on 2 cores)')
        clip_weights = sp.step_clip(wargs, world)

    rows = []
    for label, tag, config in configs:
        if tag not in args.models:
            continue
        for seed in args.train_seeds:
            cfg = build_cfg(config, args.data_root, clip_weights, args.iters)
            if proxy:  # evaluated below on every style, not during training
                cfg.train_cfg.val_interval = cfg.train_cfg.max_iters + 1
            if seed != 0:  # seed 0 keeps the configs' own (cached) setting
                cfg.randomness = dict(seed=seed)
            run = tag if seed == 0 else f'{tag}_seed{seed}'
            weights = cfg.model.backbone.get('pretrained')
            log(f'{label}, seed {seed}: training {config}')
            ckpt, secs, curve = train(cfg, config, osp.join(args.work_dir, run),
                               weights, args.iters, args.fresh)
            log(f'{label}, seed {seed}: evaluating {ckpt}')
            out_dir = osp.join(args.work_dir, run, 'dg_benchmark')
            report = dg_benchmark.run_dg_benchmark(
                cfg, ckpt, work_dir=out_dir, log=log)
            report.update(config=config, checkpoint=ckpt)
            dg_benchmark.write_report(
                report, out_dir,
                f'python tools/analysis_tools/dg_benchmark.py {config} {ckpt}')
            rows.append(dict(model=label, tag=tag, seed=seed,
                             backbone_weights=weights, train_seconds=secs,
                             loss_curve=curve,
                             iters=cfg.train_cfg.max_iters,
                             batch_size=cfg.train_dataloader.batch_size,
                             **report))

    tags = {r['tag'] for r in rows}
    if len(tags) < len(configs):
        for r in rows:
            log(f"{r['model']}, seed {r['seed']}: target mean mIoU "
                f"{fmt(r['target_mean_mIoU'])} (results files not written: "
                'run both models)')
        return rows
    names = list(rows[0]['targets'])
    summary = []
    for label, tag, config in configs:
        mine = [r for r in rows if r['tag'] == tag]
        summary.append(dict(
            model=label, tag=tag, config=config,
            seeds=[r['seed'] for r in mine],
            mIoU={n: _mean([r['targets'][n]['mIoU'] for r in mine])
                  for n in names},
            target_mean_mIoU=_mean([r['target_mean_mIoU'] for r in mine])))

    cmd = 'python tools/analysis_tools/bench_vltseg.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    if proxy:
        cmd = ('OMP_NUM_THREADS=' + os.environ.get('OMP_NUM_THREADS', '(unset)')
               + ' ' + cmd)
    head = ['backbone init', 'seed'] + [
        f"{n} ({rows[0]['targets'][n]['role']})" for n in names
    ] + ['mean over targets', 'train wall s']
    n_seeds = len(args.train_seeds)
    title = ('# VLTSeg on the proxy CLIP ViT (issue #25): CLIP vs. random '
             'initialisation' if proxy else
             '# VLTSeg on the synthetic world: CLIP vs. random initialisation')
    tower = ("'clipdense-synth-vit8' ViT (the proxy CLIP: width 96, 4 blocks, "
             'patch 8, taps after every block as a 4-level pyramid)' if proxy
             else "'clipdense-synth-rn' ResNet")
    lines = [
        title, '',
        f'Command: `{cmd.strip()}`', '',
        'Mask2Former (16 queries, 2 decoder layers, width 64) on the '
        f"{tower}, fully fine-tuned on the source style "
        f"only ({rows[0]['iters']} iterations of batch "
        f"{rows[0]['batch_size']} at 128 px, "
        'backbone lr x0.1, grad-clip 0.01, 1 CPU thread), evaluated on every '
        'style with tools/analysis_tools/dg_benchmark.py. mIoU (%) over '
        f'the 13 classes; {n_seeds} training seed(s) per model.', '',
        '| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)
    ]
    for sm in summary:
        for r in (r for r in rows if r['tag'] == sm['tag']):
            cells = [r['model'], str(r['seed'])]
            cells += [fmt(r['targets'][n]['mIoU']) for n in names]
            cells += [fmt(r['target_mean_mIoU']), fmt(r['train_seconds'])]
            lines.append('| ' + ' | '.join(cells) + ' |')
        if n_seeds > 1:
            cells = [f"**{sm['model']}**", f'mean of {n_seeds}']
            cells += [f"**{fmt(sm['mIoU'][n])}**" for n in names]
            cells += [f"**{fmt(sm['target_mean_mIoU'])}**", '']
            lines.append('| ' + ' | '.join(cells) + ' |')
    clip_m = summary[0]['target_mean_mIoU']
    rand_m = summary[1]['target_mean_mIoU']
    per_target = ', '.join(
        f"{n} {summary[0]['mIoU'][n] - summary[1]['mIoU'][n]:+.2f}"
        for n in names)
    lines += ['', f'CLIP minus random init (mean over seeds): target mean '
              f'{clip_m - rand_m:+.2f} mIoU; per style: {per_target}.', '',
              'Configs: ' + ', '.join(f"`{s['config']}`" for s in summary)
              + '.',
              'Per-class IoU of every style is in the JSON next to this file. '
              'Training wall times are from a 2-core machine shared with '
              'other jobs (not a speed measurement).']
    data = dict(command=cmd.strip(), summary=summary, rows=rows,
                wall_seconds=round(time.perf_counter() - t0, 1))
    if proxy:
        ablation, extra = proxy_ablation(args, summary, rows)
        data['ablation'] = ablation
        lines += extra
    md = '\n'.join(lines) + '\n'
    write_results(args.out + '.md', md, args.out + '.json', data, indent=2)
    print('\n' + md, flush=True)
    log(f'wrote {args.out}.md / .json in {time.perf_counter() - t0:.0f}s')
    return rows


if __name__ == '__main__':
    main()
