"""Run every method present on the synthetic world and write one table.

    python tools/analysis_tools/synthetic_benchmark.py [--out results/synthetic_benchmark.md]

Each method is a function in ``METHODS`` returning a row; method issues add
theirs. Steps that the quickstart already ran are reused from its caches
(same work dir), so a run after ``make quickstart`` only evaluates.
"""
import argparse
import json
import os.path as osp
import sys
import time

from clipdense.apis import synthetic_pipeline as sp


def clip_fpn_baseline(args, world):
    """Semantic FPN on the tiny CLIP ResNet, trained on the source style."""
    from clipdense.datasets.synthetic import spec
    weights = sp.step_clip(args, world)
    cfg, ckpt = sp.step_seg(args, weights)
    res = sp.step_eval(args, cfg, ckpt)
    targets = [res[s]['mIoU'] for s in spec.TARGET_STYLES]
    return dict(
        method='CLIP + Semantic FPN (source-only)',
        config=osp.relpath(sp.SEG_CONFIG, sp.ROOT),
        metric='mIoU',
        source=res[spec.SOURCE_STYLE]['mIoU'],
        targets={s: res[s]['mIoU'] for s in spec.TARGET_STYLES},
        target_mean=sum(targets) / len(targets))


def tiny_clip_zero_shot(args, world):
    """Zero-shot single-object classification of the tiny CLIP."""
    weights = sp.step_clip(args, world)
    acc = sp.zero_shot_accuracy(weights, world) * 100
    return dict(
        method='tiny CLIP zero-shot classification (top-1, 10 things)',
        config=osp.relpath(sp.CLIP_CONFIG, sp.ROOT),
        metric='top-1 %', source=acc, targets={}, target_mean=None)


METHODS = [tiny_clip_zero_shot, clip_fpn_baseline]


def fmt(v):
    return '' if v is None else f'{v:.2f}'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=osp.join(sp.ROOT, 'results',
                                                  'synthetic_benchmark.md'))
    parser.add_argument('--data-root', default=osp.join(sp.ROOT, 'data',
                                                        'synthetic'))
    parser.add_argument('--work-dir', default=osp.join(sp.ROOT, 'work_dirs',
                                                       'quickstart'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    args.fresh, args.iters = False, None

    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from clipdense.datasets.synthetic import spec
    t0 = time.perf_counter()
    world = sp.step_world(args)
    rows = [m(args, world) for m in METHODS]

    cmd = 'python tools/analysis_tools/synthetic_benchmark.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    head = ['method', 'metric', f'source ({spec.SOURCE_STYLE})',
            *spec.TARGET_STYLES, 'targets mean', 'config']
    lines = [f'# Synthetic world benchmark\n\nCommand: `{cmd.strip()}`\n',
             '| ' + ' | '.join(head) + ' |',
             '|' + ' --- |' * len(head)]
    for r in rows:
        cells = [r['method'], r['metric'], fmt(r['source']),
                 *[fmt(r['targets'].get(s)) for s in spec.TARGET_STYLES],
                 fmt(r['target_mean']), f'`{r["config"]}`']
        lines.append('| ' + ' | '.join(cells) + ' |')
    md = '\n'.join(lines) + '\n'
    from clipdense.fileio import atomic_write_bytes
    atomic_write_bytes(args.out, md.encode())
    atomic_write_bytes(
        osp.splitext(args.out)[0] + '.json',
        json.dumps(dict(command=cmd, rows=rows), indent=2,
                   sort_keys=True).encode())
    print(md)
    print(f'wrote {args.out} in {time.perf_counter() - t0:.0f}s')


if __name__ == '__main__':
    main()
