"""Speed of a segmentation config: params, FLOPs, latency, memory, and the
achieved FLOP/s as a fraction of a same-precision matmul timed in the same run.

    python tools/analysis_tools/benchmark.py CONFIG [CHECKPOINT]
        [--shape H W] [--device cpu|cuda:0] [--precision fp32|bf16|fp16]
        [--batch N] [--repeat 5] [--random-weights] [--slide-batch K]
        [--labels-only] [--vocabulary-size K] [--out result.json]

``--random-weights`` drops every ``pretrained`` reference (speed does not
depend on the weights; nothing is downloaded). ``--slide-batch K`` runs K
sliding windows per forward (configs in slide mode). ``--vocabulary-size``
replaces an open-vocabulary model's classes by K synthetic names (to measure
the per-image cost of large vocabularies; their text embeddings are computed
once, before timing). ``--labels-only`` returns whole-image labels without
the full-size logits (``test_cfg.labels_only``; see
``clipdense/models/segmentors/labels_only.py``), which is what keeps large
vocabularies cheap.
"""
import argparse
import json
import os
import os.path as osp
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None)
    p.add_argument('--shape', type=int, nargs=2, default=[512, 512],
                   metavar=('H', 'W'))
    p.add_argument('--device', default='cpu')
    p.add_argument('--precision', default='fp32',
                   choices=['fp32', 'bf16', 'fp16'])
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--repeat', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--random-weights', action='store_true')
    p.add_argument('--slide-batch', type=int, default=None)
    p.add_argument('--labels-only', action='store_true',
                   help='whole-image labels without full-size logits '
                        '(test_cfg.labels_only)')
    p.add_argument('--vocabulary-size', type=int, default=None)
    p.add_argument('--matmul-size', type=int, default=2048)
    p.add_argument('--no-flops', action='store_true')
    p.add_argument('--cfg-options', nargs='+', default=None,
                   help='key=value overrides (as tools/test.py)')
    p.add_argument('--out', default=None, help='write the result as JSON')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.batch < 1 or args.repeat < 1:
        sys.exit('--batch and --repeat must be >= 1')
    if not osp.isfile(args.config):
        sys.exit(f'config file not found: {args.config}')
    from clipdense.apis.benchmark import benchmark_model, build_model, \
        format_table
    from clipdense.engine.precision import check_precision
    from clipdense.utils import register_all_modules
    try:
        check_precision(args.precision, args.device)
    except ValueError as e:
        sys.exit(str(e))
    register_all_modules(init_default_scope=False)
    options = None
    if args.cfg_options:
        options = {}
        for kv in args.cfg_options:
            k, _, v = kv.partition('=')
            try:
                options[k] = json.loads(v)
            except json.JSONDecodeError:
                options[k] = v
    model = build_model(args.config, args.checkpoint, device=args.device,
                        random_weights=args.random_weights,
                        cfg_options=options,
                        slide_batch_size=args.slide_batch,
                        labels_only=args.labels_only)
    if args.vocabulary_size:
        from clipdense.apis.inference import set_model_vocabulary
        set_model_vocabulary(
            model, [f'object number {i}' for i in range(args.vocabulary_size)])
    res = benchmark_model(model, shape=args.shape, batch=args.batch,
                          precision=args.precision, device=args.device,
                          repeat=args.repeat, warmup=args.warmup,
                          flops=not args.no_flops,
                          matmul_size=args.matmul_size)
    res['name'] = osp.splitext(osp.basename(args.config))[0]
    res['command'] = ' '.join(['python', 'tools/analysis_tools/benchmark.py'] +
                              (sys.argv[1:] if argv is None else list(argv)))
    print(format_table([res]))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == '__main__':
    main()
