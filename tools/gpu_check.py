"""One command that exercises clipdense on a GPU: every method's synthetic
config trains a few iterations with AMP, is evaluated, and the demo runs.

    python tools/gpu_check.py                      # CUDA (the default)
    python tools/gpu_check.py --device cpu --iters 1   # the same steps on the CPU

A scratch folder (``--work-dir``, default ``work_dirs/gpu_check``) receives a
tiny synthetic world with every part (``data/synthetic``) and a randomly
initialised tiny CLIP (``work_dirs/quickstart/tiny_clip.pt``): the synthetic
configs find both by their relative paths, since every step runs with the
scratch folder as its working directory. Nothing outside it is written.

For each config (``configs/*/*synth*`` at 128 px, ``--only`` filters by a
substring): ``tools/train.py --amp`` for ``--iters`` iterations (one epoch
for epoch-based configs) when the config trains, ``tools/test.py`` on the
resulting checkpoint (or on the config's own weights for training-free
methods), and ``demo/image_demo.py`` on ``demo/demo.png`` for the
segmentation, anomaly and affordance configs (ReCo+ first makes its
pseudo-labels with ``tools/dataset_converters/reco_pseudo_labels.py``). A
step that fails is reported with the tail of its output and the check goes
on; the exit status is the number of failed steps (0 = all passed). Each step's log is kept under
``<work-dir>/logs/``, and the table is written to ``<work-dir>/gpu_check.md``.

``--device cpu`` hides CUDA from the steps (``CUDA_VISIBLE_DEVICES=``), so
the script itself can be checked on a machine without a GPU; training is
then fp32 (MMEngine's ``AmpOptimWrapper`` needs an accelerator).
"""
import argparse
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_IMAGE = osp.join(ROOT, 'demo', 'demo.png')


def log(msg):
    print(f'[gpu_check] {msg}', flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    p.add_argument('--iters', type=int, default=5,
                   help='training iterations of iteration-based configs')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                  'gpu_check'))
    p.add_argument('--only', nargs='*', default=None,
                   help='run only configs whose path contains one of these')
    p.add_argument('--no-amp', action='store_true',
                   help='train in fp32 (AMP is on by default)')
    p.add_argument('--timeout', type=int, default=900,
                   help='seconds allowed to one step')
    return p.parse_args(argv)


def synthetic_configs(only):
    paths = sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*synth*.py')))
    paths = [p for p in paths if '128x128' in osp.basename(p)]
    if only:
        paths = [p for p in paths if any(s in p for s in only)]
    return paths


def prepare_scratch(work_dir):
    """The tiny world and a random tiny CLIP, at the relative paths the
    synthetic configs use (12 training images a style: ReCo retrieves 10)."""
    import torch

    from clipdense.datasets.synthetic import generate_world
    from clipdense.models.utils.clip_archs import register_clip_archs
    world = osp.join(work_dir, 'data', 'synthetic')
    generate_world(world, seed=0, size=128, num_train=12, num_val=2,
                   num_clip_train=16, num_clip_val=4, num_cls_per_class=1,
                   num_anomaly_train=2, num_anomaly_good=2,
                   num_anomaly_defect=1, num_refer_train=8, num_refer_val=4,
                   num_agd_per_pair=1, workers=1, progress=False)
    weights = osp.join(work_dir, 'work_dirs', 'quickstart', 'tiny_clip.pt')
    if not osp.isfile(weights):
        import open_clip
        register_clip_archs()
        torch.manual_seed(0)
        model = open_clip.create_model('clipdense-synth-rn')
        os.makedirs(osp.dirname(weights), exist_ok=True)
        torch.save(model.state_dict(), weights)
    return world, weights


def plan(config):
    """(trains, epoch_based, demo task) of a config."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    train_cfg = cfg.get('train_cfg') or {}
    trains = bool(cfg.get('train_dataloader')) and bool(train_cfg) and \
        train_cfg.get('max_iters', 1) != 0 and \
        train_cfg.get('max_epochs', 1) != 0  # training-free: max_iters=0
    epoch_based = train_cfg.get('type', '') == 'EpochBasedTrainLoop' or \
        bool(train_cfg.get('by_epoch', False))
    name = osp.basename(config)
    model_type = str(cfg.model.get('type', ''))
    if 'anovl' in name or 'winclip' in name:
        task = 'anomaly'
    elif 'affordance' in name:
        task = 'affordance'
    elif 'Detector' in model_type or 'RetinaNet' in model_type or \
            'RCNN' in model_type or 'synthetic_clip' in config:
        task = None  # the demo is for dense prediction only
    else:
        task = 'semseg'
    has_test = bool(cfg.get('test_dataloader')) and bool(cfg.get('test_cfg'))
    has_ckpt_hook = bool((cfg.get('default_hooks') or {}).get('checkpoint'))
    return trains, epoch_based, task, has_test, has_ckpt_hook


def run_step(name, args, cwd, env, timeout, logs):
    t0 = time.perf_counter()
    log_file = osp.join(logs, name.replace('/', '_') + '.log')
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        rc = 'timeout'
        out = (e.stdout or b'').decode(errors='replace') if isinstance(
            e.stdout, bytes) else (e.stdout or '')
    with open(log_file, 'w') as f:
        f.write(' '.join(args) + '\n\n' + out)
    secs = time.perf_counter() - t0
    ok = rc == 0
    log(f'{"ok  " if ok else "FAIL"} {name} ({secs:.1f} s)')
    if not ok:
        tail = '\n'.join(out.strip().splitlines()[-15:])
        print(f'--- {name}: exit {rc}, last lines ({log_file}):\n{tail}\n---',
              flush=True)
    return dict(step=name, ok=ok, rc=rc, secs=secs, log=log_file,
                peak=peak_memory(out))


def peak_memory(out):
    """Largest ``memory: N`` (MiB, MMEngine's log on CUDA) in a step log."""
    import re
    vals = [int(m) for m in re.findall(r'\bmemory: (\d+)', out)]
    return max(vals) if vals else None


def main(argv=None):
    args = parse_args(argv)
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + (os.pathsep + env['PYTHONPATH']
                                if env.get('PYTHONPATH') else '')
    if args.device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    else:
        import torch
        if not torch.cuda.is_available():
            print('error: --device cuda but torch sees no CUDA device '
                  f'(torch {torch.__version__}, CUDA build '
                  f'{torch.version.cuda}); use --device cpu to check the '
                  'script itself', file=sys.stderr)
            return 2
        log(f'device: {torch.cuda.get_device_name(0)}, torch '
            f'{torch.__version__}, CUDA {torch.version.cuda}')
    env.setdefault('OMP_NUM_THREADS', '2')
    amp = not args.no_amp
    if amp and args.device == 'cpu':
        # MMEngine's AmpOptimWrapper refuses to run without an accelerator
        log('--device cpu: training in fp32 (MMEngine has no CPU AMP)')
        amp = False
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)

    work = osp.abspath(args.work_dir)
    logs = osp.join(work, 'logs')
    os.makedirs(logs, exist_ok=True)
    t0 = time.perf_counter()
    world, _ = prepare_scratch(work)
    log(f'scratch folder {work} ready ({time.perf_counter() - t0:.1f} s)')
    from clipdense.datasets.synthetic import spec
    vocabulary = ','.join(spec.CLASSES) if hasattr(spec, 'CLASSES') else None

    py = sys.executable
    results = []
    configs = synthetic_configs(args.only)
    if not configs:
        print('error: no config matches --only', file=sys.stderr)
        return 2
    for config in configs:
        name = osp.splitext(osp.basename(config))[0]
        run_dir = osp.join(work, 'runs', name)
        shutil.rmtree(run_dir, ignore_errors=True)
        trains, epoch_based, task, has_test, has_ckpt_hook = plan(config)
        ckpt = None
        if 'reco-plus' in name:  # trains on ReCo's pseudo-labels: make them
            cmd = [py, osp.join(ROOT, 'tools', 'dataset_converters',
                                'reco_pseudo_labels.py'),
                   osp.join(ROOT, 'configs', 'reco',
                            'reco_clip-synth-rn_synthetic-128x128.py'),
                   '--img-dir', 'data/synthetic/flat/img_dir/train',
                   '--out-dir', 'work_dirs/reco/pseudo_labels/synthetic-flat-train',
                   '--device', args.device]
            r = run_step(f'{name}/pseudo-labels', cmd, work, env, args.timeout,
                         logs)
            results.append(r)
            if not r['ok']:
                continue
        if trains:
            if epoch_based:
                shrink = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
                n = 1
                ckpt = osp.join(run_dir, 'epoch_1.pth')
            else:
                n = args.iters
                shrink = [f'train_cfg.max_iters={n}',
                          f'train_cfg.val_interval={n}']
                ckpt = osp.join(run_dir, f'iter_{n}.pth')
            if has_ckpt_hook:  # else MMEngine's default: every iteration
                shrink.append(f'default_hooks.checkpoint.interval={n}')
            cmd = [py, osp.join(ROOT, 'tools', 'train.py'), config,
                   '--work-dir', run_dir]
            if amp:
                cmd.append('--amp')
            cmd += ['--cfg-options', 'train_dataloader.batch_size=2',
                    'train_dataloader.num_workers=0',
                    'train_dataloader.persistent_workers=False', *shrink]
            r = run_step(f'{name}/train', cmd, work, env, args.timeout, logs)
            results.append(r)
            if not r['ok']:
                continue
        if has_test:
            cmd = [py, osp.join(ROOT, 'tools', 'test.py'), config,
                   ckpt or 'none', '--work-dir', run_dir]
            results.append(run_step(f'{name}/test', cmd, work, env,
                                    args.timeout, logs))
        if task is not None:
            cmd = [py, osp.join(ROOT, 'demo', 'image_demo.py'), DEMO_IMAGE,
                   config]
            if ckpt:
                cmd.append(ckpt)
            cmd += ['--task', task, '--device', args.device, '--out-file',
                    osp.join(run_dir, 'demo.png')]
            if task == 'anomaly':
                cmd += ['--class-name', 'object']
            elif task == 'affordance':
                cmd += ['--prompt', 'hold;cut with']
            elif vocabulary and not ckpt:
                cmd += ['--vocabulary', vocabulary]
            results.append(run_step(f'{name}/demo', cmd, work, env,
                                    args.timeout, logs))

    failed = [r for r in results if not r['ok']]
    lines = [f'# GPU check ({args.device})', '',
             f'Command: `python tools/gpu_check.py {" ".join(argv or sys.argv[1:])}`',
             '', '| step | result | seconds | peak memory (MiB) |',
             '| --- | --- | --- | --- |']
    for r in results:
        lines.append(f'| {r["step"]} | {"ok" if r["ok"] else "FAIL " + str(r["rc"])}'
                     f' | {r["secs"]:.1f} | {r["peak"] if r["peak"] is not None else ""} |')
    lines += ['', f'{len(results) - len(failed)} of {len(results)} steps '
              f'passed in {time.perf_counter() - t0:.0f} s.']
    with open(osp.join(work, 'gpu_check.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines), flush=True)
    return len(failed)


if __name__ == '__main__':
    sys.exit(main())
