"""Domain generalization benchmark: one checkpoint, several target test
sets, one table.

    python tools/analysis_tools/dg_benchmark.py CONFIG CHECKPOINT
        [--targets NAME ...] [--data-root DIR] [--out-dir DIR]
        [--work-dir DIR] [--cfg-options k=v ...] [--launcher ...]

The targets are named dataset configs in the config's ``dg_targets`` dict
(``configs/_base_/datasets/dg_urban_targets.py``: cityscapes, bdd100k,
mapillary, acdc, acdc_fog/night/rain/snow; the synthetic world's configs:
flat, textured, night, fog). Without ``--targets`` the config's
``dg_default_targets`` are used (all of ``dg_targets`` if it has none). A
target without a ``pipeline`` is read with the config's test pipeline (the
source model's test scale). ``--data-root`` replaces every target's
``data_root`` (e.g. a synthetic world written elsewhere).

The target named like the config's ``dg_source`` (if any) is marked
'source' and left out of the mean. Writes ``dg_benchmark.md`` (with the
command on top), ``dg_benchmark.csv`` (target, role, mIoU, mAcc, aAcc,
images; a last row with the mean mIoU over targets) and
``dg_benchmark.json`` (the same plus the per-class IoU/Acc of every
target) to ``--out-dir`` (default ``<work-dir>``, itself
``work_dirs/dg_benchmark/<config name>``).

Paper reference: VLTSeg (Hümmer et al., ACCV 2024) reports GTA5 ->
Cityscapes/BDD100K/Mapillary and Cityscapes -> BDD100K/Mapillary/ACDC this
way, one model against several unseen targets.
"""
import argparse
import copy
import csv
import io
import json
import math
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, ROOT)

from clipdense.engine.launch import (add_common_args, build_runner,  # noqa: E402
                                     load_config, setup_from_args)

SUMMARY = ('mIoU', 'mAcc', 'aAcc')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate one checkpoint on several target test sets '
        '(domain generalization) and write one table')
    parser.add_argument('config', help='the model config (with dg_targets)')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--targets', nargs='+', default=None,
                        help="names in the config's dg_targets (default: "
                        'dg_default_targets, else all)')
    parser.add_argument('--data-root', default=None,
                        help="replace every target's data_root")
    parser.add_argument('--out-dir', default=None,
                        help='where the .md/.csv/.json go (default: the work dir)')
    parser.add_argument('--work-dir', default=None,
                        help='logs of the test runs (default: '
                        'work_dirs/dg_benchmark/<config name>)')
    add_common_args(parser)
    return parser.parse_args(argv)


def resolve_targets(cfg, names=None):
    """The ``(name, dataset cfg)`` pairs to evaluate, in order."""
    available = cfg.get('dg_targets', None)
    if not available:
        raise ValueError(
            'the config has no dg_targets; add a dict of named test datasets '
            "(see configs/_base_/datasets/dg_urban_targets.py) or inherit "
            'one of the dg_* dataset bases')
    if not names:
        names = cfg.get('dg_default_targets', None) or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f'unknown target(s) {unknown}; the config defines '
                         f'{sorted(available)}')
    if len(set(names)) != len(names):
        raise ValueError(f'--targets repeats a name: {names}')
    return [(n, copy.deepcopy(available[n])) for n in names]


def _evaluator_for(cfg):
    ev = copy.deepcopy(cfg.get('test_evaluator', None)) or dict(
        type='IoUMetric', iou_metrics=['mIoU'])
    if isinstance(ev, (list, tuple)):
        raise ValueError('dg_benchmark needs a single IoU test_evaluator, got '
                         f'a list of {len(ev)}')
    if ev.get('type') not in ('IoUMetric', 'mmseg.IoUMetric',
                              'PerClassIoUMetric', 'clipdense.PerClassIoUMetric'):
        raise ValueError(f"dg_benchmark evaluates mIoU; the config's "
                         f"test_evaluator is {ev.get('type')!r}")
    ev['type'] = 'PerClassIoUMetric'
    ev['iou_metrics'] = ['mIoU']
    return ev


def _finite(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _target_dataset(cfg, dataset_cfg, data_root=None):
    ds = copy.deepcopy(dataset_cfg)
    if 'pipeline' not in ds:
        ds['pipeline'] = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    if data_root is not None:
        ds['data_root'] = data_root
    ds['test_mode'] = True
    return ds


def _summary(metrics, n_images):
    out = {k: float(metrics[k]) for k in SUMMARY}
    out['num_images'] = n_images
    out['per_class_iou'] = {k[4:]: _finite(float(v)) for k, v in metrics.items()
                            if k.startswith('IoU.')}
    out['per_class_acc'] = {k[4:]: _finite(float(v)) for k, v in metrics.items()
                            if k.startswith('Acc.')}
    return out


def run_dg_benchmark(cfg, checkpoint, targets=None, work_dir=None,
                     data_root=None, log=print):
    """Evaluate ``checkpoint`` on the named targets of ``cfg``.

    One runner is built (model and checkpoint loaded once); each target
    then gets its own test loop (dataloader and per-class IoU evaluator).

    Returns:
        dict: ``source`` (the config's dg_source or None), ``targets``
        (name -> role, mIoU, mAcc, aAcc, num_images, per_class_iou,
        per_class_acc, in the order given), ``target_mean_mIoU`` (over the
        targets whose role is 'target') and ``targets_in_mean``.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} not found; pass a '
                                '.pth written by tools/train.py')
    pairs = resolve_targets(cfg, targets)
    evaluator = _evaluator_for(cfg)
    source = cfg.get('dg_source', None)
    work_dir = work_dir or cfg.get('work_dir', None) or osp.join(
        'work_dirs', 'dg_benchmark')
    runner = None
    results = {}
    for name, ds in pairs:
        role = 'source' if name == source else 'target'
        log(f'[dg_benchmark] {name} ({role})')
        dataloader = copy.deepcopy(cfg.test_dataloader)
        dataloader['dataset'] = _target_dataset(cfg, ds, data_root)
        if runner is None:
            c = copy.deepcopy(cfg)
            c.test_dataloader = dataloader
            c.test_evaluator = copy.deepcopy(evaluator)
            c.load_from = checkpoint
            c.resume = False
            c.work_dir = work_dir
            c.experiment_name = (f'dg_benchmark_{time.strftime("%Y%m%d_%H%M%S")}'
                                 f'_{os.getpid()}')
            runner = build_runner(c)
        else:
            # a fresh test loop on the same model (loaded once)
            runner._test_dataloader = dataloader
            runner._test_evaluator = copy.deepcopy(evaluator)
            runner._test_loop = copy.deepcopy(
                cfg.get('test_cfg', None) or dict(type='TestLoop'))
        metrics = runner.test()
        r = _summary(metrics, len(runner.test_loop.dataloader.dataset))
        r['role'] = role
        results[name] = r
    in_mean = [n for n, r in results.items() if r['role'] == 'target']
    mean = (sum(results[n]['mIoU'] for n in in_mean) / len(in_mean)
            if in_mean else None)
    return dict(source=source, targets=results, target_mean_mIoU=mean,
                targets_in_mean=in_mean)


def format_markdown(report, command, title='Domain generalization benchmark'):
    lines = [f'# {title}', '', f'Command: `{command}`', '',
             f"Config: `{report['config']}`  ",
             f"Checkpoint: `{report['checkpoint']}`", '',
             '| target | role | mIoU | mAcc | aAcc | images |',
             '| --- | --- | --- | --- | --- | --- |']
    for name, r in report['targets'].items():
        lines.append(f"| {name} | {r['role']} | {r['mIoU']:.2f} | "
                     f"{r['mAcc']:.2f} | {r['aAcc']:.2f} | {r['num_images']} |")
    if report['target_mean_mIoU'] is not None:
        lines.append(f"| **mean over targets** | | "
                     f"**{report['target_mean_mIoU']:.2f}** | | | |")
    return '\n'.join(lines) + '\n'


def format_csv(report):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator='\n')
    w.writerow(['target', 'role', 'mIoU', 'mAcc', 'aAcc', 'images'])
    for name, r in report['targets'].items():
        w.writerow([name, r['role'], f"{r['mIoU']:.2f}", f"{r['mAcc']:.2f}",
                    f"{r['aAcc']:.2f}", r['num_images']])
    if report['target_mean_mIoU'] is not None:
        w.writerow(['mean_targets', 'target',
                    f"{report['target_mean_mIoU']:.2f}", '', '', ''])
    return buf.getvalue()


def write_report(report, out_dir, command):
    from clipdense.fileio import atomic_write_bytes
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(out_dir, f'dg_benchmark.{ext}')
             for ext in ('md', 'csv', 'json')}
    atomic_write_bytes(paths['md'], format_markdown(report, command).encode())
    atomic_write_bytes(paths['csv'], format_csv(report).encode())
    atomic_write_bytes(paths['json'], json.dumps(
        dict(report, command=command), indent=2).encode())
    return paths


def command_line(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    import shlex
    return 'python tools/analysis_tools/dg_benchmark.py ' + ' '.join(
        shlex.quote(a) for a in args)


def main(argv=None):
    args = parse_args(argv)
    setup_from_args(args)
    if args.work_dir is None:
        args.work_dir = osp.join(
            'work_dirs', 'dg_benchmark',
            osp.splitext(osp.basename(args.config))[0])
    cfg = load_config(args)
    t0 = time.perf_counter()
    report = run_dg_benchmark(cfg, args.checkpoint, args.targets,
                              work_dir=args.work_dir, data_root=args.data_root)
    report.update(config=args.config, checkpoint=args.checkpoint,
                  wall_seconds=round(time.perf_counter() - t0, 1))
    cmd = command_line(argv)
    paths = write_report(report, args.out_dir or args.work_dir, cmd)
    print('\n' + format_markdown(report, cmd), flush=True)
    print(f"[dg_benchmark] wrote {paths['md']}, {paths['csv']}, "
          f"{paths['json']}", flush=True)
    return report


if __name__ == '__main__':
    main()
