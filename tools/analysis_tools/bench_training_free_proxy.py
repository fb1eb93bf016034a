"""Training-free open-vocabulary segmentation on the synthetic world with the
proxy CLIP ViT: writes ``results/training_free_proxy.{md,json}``.

    make proxy-clip   # once: work_dirs/proxy/proxy_clip.pt
    python tools/analysis_tools/bench_training_free_proxy.py [--max-val N]

Rows, each a shipped config run through MMEngine's test loop (``Runner.test``,
as ``tools/test.py CONFIG none``) and scored by mmseg's ``IoUMetric``; only
the data root, the split/style folders and the weights path are overridden:

* **naive dense CLIP** - MaskCLIP's proxy config with the last block run as
  CLIP runs it, q-k attention at every token (backbone ``joint_outputs``
  ``'dense'``, head ``value_key='dense'``);
* **MaskCLIP** (Zhou et al., ECCV 2022) -
  ``configs/maskclip/maskclip_clip-synth-vit8_synthetic-128x128.py``: the
  value path of the last block;
* **ClearCLIP** (Lan et al., ECCV 2024) -
  ``configs/clearclip/clearclip_clip-synth-vit8_synthetic-128x128.py``;
* **SCLIP** (Wang et al., ECCV 2024) -
  ``configs/sclip/sclip_clip-synth-vit8_synthetic-128x128.py``.

All four share the vocabulary, templates, whole-image 128 px input and the
proxy CLIP (``clipdense-synth-vit8``, 16x16 tokens at 128 px). Nothing was
chosen on these numbers. The proxy is weak at dense prediction (results/proxy_clip.md),
so the table shows that the methods run on a CLIP ViT trained on the world,
not the papers' margins.
"""
import argparse
import copy
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from clipdense.engine.bench_harness import (build_runner, command_line, make_log,  # noqa: E402
                                            md_table, write_results)

STYLES = ('flat', 'textured', 'night', 'fog')
ROWS = (
    ('naive dense CLIP', 'configs/maskclip/maskclip_clip-synth-vit8_synthetic-128x128.py',
     'dense'),
    ('MaskCLIP', 'configs/maskclip/maskclip_clip-synth-vit8_synthetic-128x128.py', None),
    ('ClearCLIP', 'configs/clearclip/clearclip_clip-synth-vit8_synthetic-128x128.py', None),
    ('SCLIP', 'configs/sclip/sclip_clip-synth-vit8_synthetic-128x128.py', None),
)

log = make_log('bench_training_free_proxy')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data-root', default=osp.join(ROOT, 'data/synthetic'))
    p.add_argument('--weights', default=osp.join(ROOT, 'work_dirs/proxy/proxy_clip.pt'))
    p.add_argument('--styles', nargs='+', default=list(STYLES))
    p.add_argument('--max-val', type=int, default=None,
                   help='val images per style (default: all)')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs/bench_training_free_proxy'))
    p.add_argument('--out', default=osp.join(ROOT, 'results/training_free_proxy'))
    return p.parse_args(argv)


def make_cfg(path, key, style, args, n):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.work_dir = args.work_dir
    cfg.experiment_name = f'proxy_{os.getpid()}_{n:03d}'
    cfg.log_level = 'WARNING'
    cfg.load_from = None
    cfg.launcher = 'none'
    if cfg.get('default_hooks') is None:
        cfg.default_hooks = dict()
    cfg.default_hooks['logger'] = dict(type='LoggerHook', interval=100000)
    m = cfg.model
    m.backbone.pretrained = args.weights
    m.decode_head.text_encoder.pretrained = args.weights
    if key is not None:
        m.backbone.joint_outputs = (key, )
        m.decode_head.value_key = key
    d = copy.deepcopy(cfg.test_dataloader.dataset)
    d.data_root = args.data_root
    d.data_prefix = dict(img_path=f'{style}/img_dir/val', seg_map_path=f'{style}/ann_dir/val')
    if args.max_val:
        d.indices = int(args.max_val)
    cfg.test_dataloader.dataset = d
    cfg.test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
    return cfg


def run_rows(rows, args, tag='', start=0):
    """Each ``(name, config, key)`` of ``rows`` on each of ``args.styles``
    with ``args.weights``, through the test loop: ``{name: {style: {mIoU,
    aAcc}}}``. ``tag`` prefixes the progress lines; ``start`` offsets the
    run numbers (unique experiment names when called more than once)."""
    results, n = {}, start
    for name, path, key in rows:
        for style in args.styles:
            n += 1
            log(f'{tag}{name} on {style}')
            out = build_runner(make_cfg(path, key, style, args, n)).test()
            results.setdefault(name, {})[style] = dict(mIoU=float(out['mIoU']),
                                                       aAcc=float(out['aAcc']))
    return results


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.weights):
        sys.exit(f'no proxy CLIP at {args.weights}: run `make proxy-clip` '
                 '(or pass --weights)')
    if not osp.isdir(args.data_root):
        sys.exit(f'no synthetic world at {args.data_root}: run `make quickstart`')
    t0 = time.time()
    results = run_rows(ROWS, args)
    wall = time.time() - t0
    head = ['row', 'config'] + list(args.styles) + ['mean']
    rows = []
    for name, path, key in ROWS:
        vals = [results[name][s]['mIoU'] for s in args.styles]
        cfg_cell = f'`{osp.basename(path)}`' + (f" + `{key}`" if key else '')
        rows.append([name, cfg_cell] + [f'{v:.2f}' for v in vals] +
                    [f'{sum(vals) / len(vals):.2f}'])
    cmd = command_line('bench_training_free_proxy.py', argv)
    md = '\n'.join([
        '# Training-free segmentation on the synthetic world with the proxy CLIP ViT',
        '',
        f'Command: `{cmd}`',
        '',
        'Proxy CLIP `clipdense-synth-vit8` (`make proxy-clip`, 16x16 tokens at 128 px; '
        'weak at dense prediction: results/proxy_clip.md). 13 classes, val split '
        f"({'first ' + str(args.max_val) + ' images' if args.max_val else 'all images'} "
        'per style), whole 128 px image, mIoU % (mmseg IoUMetric). Definitions: the '
        "script's docstring. Nothing was chosen on these numbers.",
        '',
        *md_table(head, rows),
        '',
        f'Wall time {wall:.0f} s.',
        ''])
    write_results(args.out + '.md', md, args.out + '.json',
                  dict(command=cmd, weights=osp.relpath(args.weights, ROOT)
                       if args.weights.startswith(ROOT) else args.weights,
                       styles=list(args.styles), max_val=args.max_val,
                       results=results, wall_seconds=wall), indent=2)
    log(f'wrote {args.out}.md / .json in {wall:.0f}s')
    print(md)
    return 0


if __name__ == '__main__':
    sys.exit(main())
