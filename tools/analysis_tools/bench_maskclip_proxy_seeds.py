"""MaskCLIP > naive dense CLIP over the proxy CLIP's own training seeds
(issue #25): writes ``results/maskclip_seeds_proxy.{md,json}``.

    make proxy-clip                                        # seed 0 (shipped)
    python tools/proxy_clip.py --train-seed 1 --work-dir work_dirs/proxy_seed1
    python tools/proxy_clip.py --train-seed 2 --work-dir work_dirs/proxy_seed2
    python tools/analysis_tools/bench_maskclip_proxy_seeds.py

Both arms of the claim (Zhou et al., ECCV 2022) are training-free, so with
one proxy they are deterministic and the claim has no seed spread. The
randomness left is the proxy's: this script runs the two rows of
``bench_training_free_proxy.py`` (the same configs, overrides and test loop:
MaskCLIP's value path, and the naive dense map of the q-k tokens) once per
proxy trained with another seed on the same rich-caption corpus, and writes
the claim with one value per proxy seed, in the ``"ablation"`` format of
``ablations_table.py`` (which then reads this file for the MaskCLIP row).

The weights are named per seed (``--seed-weights SEED=PATH``); each is
hashed into the results file, and two seeds with identical weights are
refused (a copied file is not a second seed). Nothing was chosen on these
numbers: the configs, styles and split are the training-free bench's.
"""
import argparse
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from clipdense.apis.synthetic_pipeline import file_hash  # noqa: E402
from clipdense.engine.bench_harness import (command_line, make_log,  # noqa: E402
                                            md_table, write_results)
from bench_training_free_proxy import ROWS, STYLES, run_rows  # noqa: E402

CLAIM = 'MaskCLIP > naive dense CLIP'
ARMS = ('MaskCLIP', 'naive dense CLIP')
DEFAULT_WEIGHTS = ('0=work_dirs/proxy/proxy_clip.pt',
                   '1=work_dirs/proxy_seed1/proxy_clip.pt',
                   '2=work_dirs/proxy_seed2/proxy_clip.pt')
MAKE = {0: 'make proxy-clip'}

log = make_log('bench_maskclip_proxy_seeds')


def parse_seed_weights(items):
    """``['SEED=PATH', ...]`` -> ``{seed: absolute path}``; a malformed item,
    a repeated seed or a missing file raises ``ValueError`` naming it and the
    command that builds it."""
    out = {}
    for item in items:
        seed, sep, path = item.partition('=')
        if not sep or not seed.strip().lstrip('-').isdigit() or not path:
            raise ValueError(f'--seed-weights {item!r}: expected SEED=PATH, '
                             'e.g. 1=work_dirs/proxy_seed1/proxy_clip.pt')
        seed = int(seed)
        if seed in out:
            raise ValueError(f'--seed-weights: seed {seed} given twice')
        path = path if osp.isabs(path) else osp.join(ROOT, path)
        if not osp.isfile(path):
            how = MAKE.get(seed, f'python tools/proxy_clip.py --train-seed {seed} '
                           f'--work-dir {osp.relpath(osp.dirname(path), ROOT)}')
            raise ValueError(f'no proxy CLIP for seed {seed} at {path}: '
                             f'build it with `{how}`')
        out[seed] = path
    if len(out) < 2:
        raise ValueError('--seed-weights: give two or more proxy seeds (a '
                         'spread needs them)')
    return out


def check_distinct(hashes):
    """Refuse two seeds whose weights are the same bytes."""
    seen = {}
    for seed, h in hashes.items():
        if h in seen:
            raise ValueError(f'the weights of proxy seeds {seen[h]} and {seed} '
                             'are identical: a copy is not a second seed; '
                             'train it with `python tools/proxy_clip.py '
                             f'--train-seed {seed} --work-dir ...`')
        seen[h] = seed


def ablation_entry(results, styles):
    """The ``"ablation"`` entry of ``ablations_table.py``: per arm, the mIoU
    averaged over ``styles``, one value per proxy seed (sorted)."""
    seeds = sorted(results)
    arms = {a: [sum(results[s][a][st]['mIoU'] for st in styles) / len(styles)
                for s in seeds] for a in ARMS}
    per = '; '.join(
        f'seed {s}: ' + ', '.join(
            f'{st} {results[s]["MaskCLIP"][st]["mIoU"]:.1f} vs '
            f'{results[s]["naive dense CLIP"][st]["mIoU"]:.1f}' for st in styles)
        for s in seeds)
    return dict(
        claim=CLAIM,
        metrics=[dict(name=f'mIoU, mean over {len(styles)} styles (%)',
                      higher_is_better=True, order=list(ARMS), arms=arms)],
        seeds=seeds,
        schedule=('training-free; the seeds are the proxy CLIP\'s training '
                  'seeds (one rich-caption corpus, the shipped proxy config)'),
        note=f'Per proxy seed and style (MaskCLIP vs naive): {per}.')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seed-weights', nargs='+', default=list(DEFAULT_WEIGHTS),
                   metavar='SEED=PATH')
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/synthetic'))
    p.add_argument('--styles', nargs='+', default=list(STYLES))
    p.add_argument('--max-val', type=int, default=None,
                   help='val images per style (default: all)')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/bench_maskclip_proxy_seeds'))
    p.add_argument('--out', default=osp.join(ROOT, 'results/maskclip_seeds_proxy'))
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        weights = parse_seed_weights(args.seed_weights)
        hashes = {s: file_hash(w) for s, w in weights.items()}
        check_distinct(hashes)
    except ValueError as e:
        sys.exit(f'bench_maskclip_proxy_seeds: {e}')
    if not osp.isdir(args.data_root):
        sys.exit(f'no synthetic world at {args.data_root}: run `make quickstart`')
    rows = [r for a in ARMS for r in ROWS if r[0] == a]
    t0 = time.time()
    results = {}
    for i, (seed, w) in enumerate(sorted(weights.items())):
        args.weights = w
        results[seed] = run_rows(rows, args, tag=f'proxy seed {seed}: ',
                                 start=i * len(rows) * len(args.styles))
    wall = time.time() - t0
    ab = ablation_entry(results, args.styles)
    head = ['proxy seed', 'row'] + list(args.styles) + ['mean']
    table = []
    for seed in sorted(results):
        for name in ARMS:
            vals = [results[seed][name][s]['mIoU'] for s in args.styles]
            table.append([str(seed), name] + [f'{v:.2f}' for v in vals] +
                         [f'{sum(vals) / len(vals):.2f}'])
    margins = [a - b for a, b in zip(*(ab['metrics'][0]['arms'][x] for x in ARMS))]
    rel = {s: osp.relpath(w, ROOT) if w.startswith(ROOT) else w
           for s, w in weights.items()}
    cmd = command_line('bench_maskclip_proxy_seeds.py', argv)
    md = '\n'.join([
        '# MaskCLIP > naive dense CLIP over the proxy CLIP\'s training seeds',
        '',
        f'Command: `{cmd}`',
        '',
        'Each proxy seed is the shipped proxy config trained with another seed on '
        'the same rich-caption corpus (`tools/proxy_clip.py --train-seed N`); the '
        'rows are `bench_training_free_proxy.py`\'s (13 classes, val split, '
        f"{'first ' + str(args.max_val) + ' images' if args.max_val else 'all images'} "
        'per style, whole 128 px image, mIoU %). Definitions: the script\'s '
        'docstring. Nothing was chosen on these numbers.',
        '',
        *md_table(head, table),
        '',
        'MaskCLIP - naive per proxy seed: ' + ', '.join(
            f'seed {s} {m:+.2f}' for s, m in zip(sorted(results), margins)) + '.',
        '',
        'Weights (sha256 of the file, first 16 hex digits): ' + ', '.join(
            f'seed {s} `{rel[s]}` {hashes[s]}' for s in sorted(rel)) + '.',
        '',
        f'Wall time {wall:.0f} s.',
        ''])
    write_results(args.out + '.md', md, args.out + '.json',
                  dict(command=cmd, weights={str(s): rel[s] for s in sorted(rel)},
                       sha256={str(s): hashes[s] for s in sorted(hashes)},
                       styles=list(args.styles), max_val=args.max_val,
                       results={str(s): results[s] for s in sorted(results)},
                       ablation=ab, wall_seconds=wall), indent=2)
    log(f'wrote {args.out}.md / .json in {wall:.0f}s')
    print(md)
    return 0


if __name__ == '__main__':
    sys.exit(main())
