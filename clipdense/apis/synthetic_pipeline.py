"""The main job on the embedded synthetic world (``make quickstart``,
``tools/quickstart.py``); its steps are reused by
``tools/analysis_tools/synthetic_benchmark.py``.

1. generate the synthetic world (cached under ``data/synthetic``);
2. train the tiny CLIP on its captions and check it zero-shot (cached);
3. train a CLIP-backbone segmentor (Semantic FPN on the tiny CLIP ResNet)
   on the source style (cached);
4. evaluate it on the source and every target style, print and write a
   table (``results/quickstart.md``, ``results/quickstart.json``) and a few
   overlay images (``results/quickstart_overlays/``).

Every step is cached by a hash of its inputs, so a second run only
re-evaluates. ``--fresh`` ignores the caches. Progress is printed as it goes.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import sys
import time

# configs/ live in the repository next to the (editable) package
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLIP_CONFIG = osp.join(
    ROOT, 'configs/synthetic_clip/'
    'clip_synth-rn_1xb64-30e_synthetic-captions-128x128.py')
SEG_CONFIG = osp.join(
    ROOT, 'configs/quickstart/'
    'fpn_clip-synth-rn_1xb8-1k_synthetic-flat-128x128.py')


def log(msg):
    print(f'[quickstart] {msg}', flush=True)


def file_hash(*paths, extra=''):
    h = hashlib.sha256(extra.encode())
    for p in paths:
        with open(p, 'rb') as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def cached(stamp, key):
    try:
        with open(stamp) as f:
            return json.load(f).get('key') == key
    except (OSError, ValueError):
        return False


def write_stamp(stamp, key, **info):
    from clipdense.fileio import atomic_write_bytes
    atomic_write_bytes(stamp, json.dumps(dict(key=key, **info)).encode())


# --tiny: a smoke-test scale of the whole job (seconds, not minutes)
TINY_WORLD = dict(size=64, num_train=8, num_val=4, num_clip_train=64,
                  num_clip_val=8, num_cls_per_class=2,
                  parts=('seg', 'captions', 'classification'))


def step_world(args):
    from clipdense.datasets.synthetic import generate_world
    kwargs = TINY_WORLD if getattr(args, 'tiny', False) else {}
    return generate_world(args.data_root, seed=args.seed, workers=1,
                          progress=True, **kwargs)


def step_clip(args, world):
    """Train the tiny CLIP; returns the open_clip weight file."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from clipdense.fileio import atomic_write_bytes
    from clipdense.models.pretraining import export_open_clip_state_dict

    work_dir = osp.join(args.work_dir, 'tiny_clip')
    out = osp.join(args.work_dir, 'tiny_clip.pt')
    meta = json.load(open(world['meta']))
    key = file_hash(CLIP_CONFIG, world['meta'],
                    extra=json.dumps([args.seed, meta,
                                      getattr(args, 'tiny', False)]))
    stamp = osp.join(work_dir, 'done.json')
    if not args.fresh and osp.isfile(out) and cached(stamp, key):
        log(f'tiny CLIP: cached ({out})')
        return out
    cfg = Config.fromfile(CLIP_CONFIG)
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.data_root = args.data_root
    cfg.experiment_name = f'tiny_clip_{int(time.time())}'
    if getattr(args, 'tiny', False):
        cfg.train_cfg.max_epochs = 1
        cfg.train_dataloader.batch_size = 16
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    import io

    import torch
    state = export_open_clip_state_dict(
        {'state_dict': runner.model.state_dict()})
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(out, buf.getvalue())
    write_stamp(stamp, key, weights=out)
    log(f'tiny CLIP: wrote {out}')
    return out


def zero_shot_accuracy(weights, world):
    """Top-1 zero-shot accuracy of the tiny CLIP on held-out single-object
    images over the thing classes ('a photo of a {}.')."""
    from clipdense.evaluation.zero_shot import zero_shot_classification
    return zero_shot_classification('clipdense-synth-rn', weights,
                                    world['classification']['labels'],
                                    world['root'])


def seg_cfg(args, clip_weights):
    from mmengine.config import Config
    cfg = Config.fromfile(SEG_CONFIG)
    cfg.model.backbone.pretrained = clip_weights
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[dl].dataset.data_root = args.data_root
    if args.iters is not None:
        shorten_schedule(cfg, args.iters)
        cfg.train_cfg.val_interval = args.iters
    return cfg


def shorten_schedule(cfg, iters: int) -> None:
    """Train ``cfg`` for ``iters`` iterations: ``max_iters``, the checkpoint
    interval, and the parameter schedulers cut at ``iters`` (those starting
    later are dropped)."""
    cfg.train_cfg.max_iters = iters
    cfg.default_hooks.checkpoint.interval = iters
    kept = []
    for sch in cfg.param_scheduler:
        if sch.get('begin', 0) >= iters:
            continue
        sch['end'] = min(sch.get('end', iters), iters)
        kept.append(sch)
    cfg.param_scheduler = kept


def step_seg(args, clip_weights):
    from mmengine.runner import Runner

    from clipdense.engine.checkpoint import find_resumable_checkpoint
    work_dir = osp.join(args.work_dir, 'seg')
    cfg = seg_cfg(args, clip_weights)
    key = file_hash(SEG_CONFIG, clip_weights, extra=str(args.iters))
    stamp = osp.join(work_dir, 'done.json')
    if not args.fresh and cached(stamp, key):
        ckpt = json.load(open(stamp))['checkpoint']
        if osp.isfile(ckpt):
            log(f'segmentor: cached ({ckpt})')
            return cfg, ckpt
    cfg.work_dir = work_dir
    cfg.experiment_name = f'seg_{int(time.time())}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = find_resumable_checkpoint(work_dir)
    write_stamp(stamp, key, checkpoint=ckpt)
    return cfg, ckpt


def step_eval(args, cfg, ckpt):
    from mmengine.runner import Runner

    from clipdense.datasets.synthetic import spec
    results = {}
    for style in spec.STYLES:
        c = cfg.copy()
        c.work_dir = osp.join(args.work_dir, 'eval', style)
        c.load_from = ckpt
        c.experiment_name = f'eval_{style}_{int(time.time())}'
        c.test_dataloader.dataset.data_prefix = dict(
            img_path=f'{style}/img_dir/val', seg_map_path=f'{style}/ann_dir/val')
        log(f'evaluating on {style} '
            f'({"source" if style == spec.SOURCE_STYLE else "target"})')
        runner = Runner.from_cfg(c)
        metrics = runner.test()
        results[style] = {k: float(v) for k, v in metrics.items()}
    return results


def write_overlays(args, cfg, ckpt, out_dir, per_style=2):
    import mmcv
    import numpy as np
    from mmseg.apis import inference_model, init_model

    from clipdense.datasets.synthetic import spec
    model = init_model(cfg, ckpt, device='cpu')
    palette = np.array(spec.PALETTE + [[0, 0, 0]] * (256 - len(spec.PALETTE)),
                       dtype=np.uint8)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for style in spec.STYLES:
        img_dir = osp.join(args.data_root, style, 'img_dir', 'val')
        for name in sorted(os.listdir(img_dir))[:per_style]:
            img = mmcv.imread(osp.join(img_dir, name))
            gt = mmcv.imread(
                osp.join(args.data_root, style, 'ann_dir', 'val', name),
                flag='unchanged')
            pred = inference_model(model, img).pred_sem_seg.data[0].numpy()
            row = [img, palette[gt][..., ::-1], palette[pred][..., ::-1]]
            path = osp.join(out_dir, f'{style}_{name}')
            mmcv.imwrite(np.concatenate(row, axis=1), path)
            written.append(path)
    return written


def format_table(results, source, zs_acc):
    styles = list(results)
    lines = [
        '| style | role | mIoU | mAcc | aAcc |', '| --- | --- | --- | --- | --- |'
    ]
    for s in styles:
        r = results[s]
        role = 'source' if s == source else 'target'
        lines.append(f'| {s} | {role} | {r["mIoU"]:.2f} | {r["mAcc"]:.2f} | '
                     f'{r["aAcc"]:.2f} |')
    targets = [results[s]['mIoU'] for s in styles if s != source]
    if targets:
        mean_t = sum(targets) / len(targets)
        lines.append(f'| targets (mean) | target | {mean_t:.2f} | | |')
    table = '\n'.join(lines)
    if zs_acc is not None:
        table += (f'\n\nTiny CLIP zero-shot top-1 on held-out single-object '
                  f'images: {zs_acc * 100:.1f}%')
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='The main job on the embedded synthetic world')
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data',
                                                        'synthetic'))
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                       'quickstart'))
    parser.add_argument('--results', default=osp.join(ROOT, 'results'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--iters', type=int, default=None,
                        help='segmentor iterations (default: the config)')
    parser.add_argument('--fresh', action='store_true',
                        help='ignore cached steps')
    parser.add_argument('--tiny', action='store_true',
                        help='smoke-test scale (tiny world, few iterations)')
    args = parser.parse_args(argv)
    if args.tiny and args.iters is None:
        args.iters = 4

    t0 = time.perf_counter()
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from clipdense.datasets.synthetic import spec

    log('[1/4] synthetic world')
    world = step_world(args)
    log('[2/4] tiny CLIP on the captions')
    clip_weights = step_clip(args, world)
    zs = zero_shot_accuracy(clip_weights, world)
    log(f'tiny CLIP zero-shot top-1: {zs * 100:.1f}%')
    log('[3/4] segmentor on the source style '
        f'"{spec.SOURCE_STYLE}"')
    cfg, ckpt = step_seg(args, clip_weights)
    log('[4/4] evaluation on the source and target styles')
    results = step_eval(args, cfg, ckpt)
    overlays = write_overlays(args, cfg, ckpt,
                              osp.join(args.results, 'quickstart_overlays'))

    table = format_table(results, spec.SOURCE_STYLE, zs)
    wall = time.perf_counter() - t0
    from clipdense.fileio import atomic_write_bytes
    os.makedirs(args.results, exist_ok=True)
    cmd = 'make quickstart  # python tools/quickstart.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    md = (f'# Quickstart: source-only segmentation on the synthetic world\n\n'
          f'Produced by `{cmd.strip()}`.\n\nSemantic FPN on the tiny CLIP '
          f'ResNet (clipdense-synth-rn), trained on "{spec.SOURCE_STYLE}" '
          f'only, evaluated on every style (mIoU, %).\n\n{table}\n')
    atomic_write_bytes(osp.join(args.results, 'quickstart.md'), md.encode())
    atomic_write_bytes(
        osp.join(args.results, 'quickstart.json'),
        json.dumps(dict(command=cmd, source=spec.SOURCE_STYLE,
                        zero_shot_top1=zs, results=results,
                        checkpoint=ckpt, wall_seconds=wall),
                   indent=2, sort_keys=True).encode())
    print('\n' + table + '\n', flush=True)
    log(f'wrote {osp.join(args.results, "quickstart.md")}, '
        f'{len(overlays)} overlays; wall time {wall:.0f}s')
    return results

