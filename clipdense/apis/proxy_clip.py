"""The proxy CLIP of the synthetic world (``make proxy-clip``,
``tools/proxy_clip.py``; issue #25).

1. write the rich-caption corpus (cached, ``data/synthetic_rich``;
   :mod:`clipdense.datasets.synthetic.rich_captions`);
2. train the proxy CLIP (``clipdense-synth-vit8``, a 16x16 token grid at
   128 px) on it and export the weights in open_clip's format to
   ``work_dirs/proxy/proxy_clip.pt``. Cached like the quickstart's tiny CLIP
   (:func:`clipdense.apis.synthetic_pipeline.step_clip`): a stamp holds a hash
   of the config, the architecture, the corpus marker, the seed and the
   schedule, so a second run returns at once; ``--fresh`` retrains.

``--train-seed N`` trains with another seed on the same corpus (the corpus
is drawn with ``--seed``): the proxy's own seed variance, for claims whose
arms are otherwise deterministic (e.g. ``--train-seed 1 --work-dir
work_dirs/proxy_seed1``).

The per-epoch mean training loss is kept in the stamp
(``work_dirs/proxy/proxy_clip/done.json``) and printed, to show whether the
schedule plateaued. ``--time-iters N`` only times N iterations (to size the
schedule) and writes nothing. ``--from-run WORK_DIR`` adopts a finished
``tools/train.py`` run of the same config and seed (e.g. trained on a GPU or
with other thread settings) instead of training: its settings are checked
against the config's, then it is exported and stamped like a run of its own.
"""
import argparse
import json
import os.path as osp
import time

from .synthetic_pipeline import ROOT, cached, file_hash, write_stamp

PROXY_CONFIG = osp.join(
    ROOT, 'configs/synthetic_clip/'
    'clip_synth-vit8_1xb64-12e_synthetic-rich-captions-regiontokens-128x128.py')
PROXY_ARCH = 'clipdense-synth-vit8'


def log(msg):
    print(f'[proxy-clip] {msg}', flush=True)


def arch_file(name=PROXY_ARCH):
    from clipdense.models.utils.clip_archs import ARCH_DIR
    return osp.join(ARCH_DIR, f'{name}.json')


def step_rich_captions(args):
    from clipdense.datasets.synthetic.rich_captions import \
        generate_rich_captions
    return generate_rich_captions(args.data_root, seed=args.seed,
                                  num_train=args.num_train,
                                  num_val=args.num_val, workers=args.workers,
                                  progress=True)


def train_seed(args):
    """The training seed: ``--train-seed``, else the corpus ``--seed``."""
    ts = getattr(args, 'train_seed', None)
    return args.seed if ts is None else ts


def proxy_cfg(args, corpus):
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    cfg.train_dataloader.dataset.data_root = corpus['root']
    cfg.randomness = dict(seed=train_seed(args))
    if args.epochs is not None:
        cfg.train_cfg.max_epochs = args.epochs
        for sch in cfg.param_scheduler:
            if sch.get('by_epoch', False):
                sch['end'] = args.epochs
    if args.batch_size is not None:
        cfg.train_dataloader.batch_size = args.batch_size
    return cfg


def epoch_losses(work_dir):
    """Per-epoch mean of the logged ``loss`` (MMEngine's ``scalars.json`` of
    the newest run under ``work_dir``): ``[(epoch, mean, n_logs), ...]``."""
    import glob
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')), key=osp.getmtime)
    if not logs:
        return []
    per = {}
    with open(logs[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec and 'epoch' in rec:
                per.setdefault(int(rec['epoch']), []).append(rec['loss'])
    return [(e, sum(v) / len(v), len(v)) for e, v in sorted(per.items())]


# the settings a run must share with the proxy config to be adopted
RUN_KEYS = ('model', 'train_dataloader', 'train_cfg', 'optim_wrapper',
            'param_scheduler', 'randomness')


def _plain(x):
    """A config value as plain data (ConfigDict -> dict, tuple -> list)."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _run_settings(cfg):
    """The :data:`RUN_KEYS` of ``cfg`` as plain data, the corpus folder
    resolved (the same corpus, however its path was spelt)."""
    out = {k: _plain(cfg.get(k)) for k in RUN_KEYS}
    ds = (out.get('train_dataloader') or {}).get('dataset') or {}
    if ds.get('data_root'):
        ds['data_root'] = osp.realpath(ds['data_root'])
    return out


def adopt_run(run_dir, cfg):
    """Check that the ``tools/train.py`` run in ``run_dir`` trained ``cfg``
    to its end; returns ``(checkpoint path, checkpoint)``. The checkpoint is
    read with :func:`clipdense.fileio.safe_torch_load` (nothing in it runs;
    a pickle outside MMEngine's own types is refused)."""
    import glob

    from mmengine.config import Config

    from clipdense.fileio import safe_torch_load
    ptr = osp.join(run_dir, 'last_checkpoint')
    if not osp.isfile(ptr):
        raise FileNotFoundError(
            f'--from-run {run_dir}: no last_checkpoint there; give the '
            '--work-dir of a finished tools/train.py run')
    ckpt = open(ptr).read().strip()
    if not osp.isabs(ckpt) and not osp.isfile(ckpt):
        ckpt = osp.join(run_dir, osp.basename(ckpt))
    dumped = glob.glob(osp.join(run_dir, '*.py'))
    if len(dumped) != 1:
        raise ValueError(f'--from-run {run_dir}: expected the one config '
                         f'tools/train.py dumps there, found {len(dumped)}')
    want, got = _run_settings(cfg), _run_settings(Config.fromfile(dumped[0]))
    for k in RUN_KEYS:
        if want[k] != got[k]:
            raise ValueError(
                f'--from-run {run_dir}: its {k} differs from the proxy '
                f'config\'s ({got[k]} != {want[k]}); retrain with the proxy '
                'config (or run make proxy-clip)')
    checkpoint = safe_torch_load(ckpt, map_location='cpu')
    epoch = checkpoint.get('meta', {}).get('epoch')
    if epoch != cfg.train_cfg.max_epochs:
        raise ValueError(
            f'--from-run {run_dir}: {osp.basename(ckpt)} is epoch {epoch} of '
            f'{cfg.train_cfg.max_epochs}; the run has not finished')
    return ckpt, checkpoint


def run_wall_seconds(run_dir, ckpt):
    """Start of the newest MMEngine log folder (named by its start time,
    ``YYYYmmdd_HHMMSS``) to the checkpoint's write; None when unknown."""
    import datetime
    import glob
    starts = []
    for d in glob.glob(osp.join(run_dir, '*', 'vis_data')):
        try:
            starts.append(datetime.datetime.strptime(
                osp.basename(osp.dirname(d)), '%Y%m%d_%H%M%S').timestamp())
        except ValueError:
            pass
    if not starts:
        return None
    wall = osp.getmtime(ckpt) - max(starts)
    return wall if wall > 0 else None


def step_proxy_clip(args, corpus):
    """Train the proxy CLIP; returns the open_clip weight file."""
    import io

    import torch
    from mmengine.runner import Runner

    from clipdense.engine.checkpoint import atomic_write_bytes
    from clipdense.models.pretraining import export_open_clip_state_dict

    work_dir = osp.join(args.work_dir, 'proxy_clip')
    out = osp.join(args.work_dir, 'proxy_clip.pt')
    marker = osp.join(corpus['root'], '.clipdense_rich_captions.json')
    key = file_hash(args.config, arch_file(), marker,
                    extra=json.dumps([args.seed, args.epochs,
                                      args.batch_size]
                                     + ([] if train_seed(args) == args.seed
                                        else [train_seed(args)])))
    stamp = osp.join(work_dir, 'done.json')
    if not args.fresh and osp.isfile(out) and cached(stamp, key):
        log(f'proxy CLIP: cached ({out})')
        return out
    cfg = proxy_cfg(args, corpus)
    if getattr(args, 'from_run', None):
        ckpt, checkpoint = adopt_run(args.from_run, cfg)
        log(f'adopting {ckpt}')
        state = export_open_clip_state_dict(checkpoint)
        work_dir, wall = args.from_run, run_wall_seconds(args.from_run, ckpt)
    else:
        cfg.work_dir = work_dir
        cfg.experiment_name = f'proxy_clip_{int(time.time())}'
        t0 = time.perf_counter()
        runner = Runner.from_cfg(cfg)
        runner.train()
        wall = time.perf_counter() - t0
        state = export_open_clip_state_dict(
            {'state_dict': runner.model.state_dict()})
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(out, buf.getvalue())
    losses = epoch_losses(work_dir)
    write_stamp(stamp, key, weights=out, train_wall_seconds=wall,
                adopted_run=getattr(args, 'from_run', None),
                epoch_loss=losses, epochs=cfg.train_cfg.max_epochs,
                batch_size=cfg.train_dataloader.batch_size)
    log(f'proxy CLIP: wrote {out}' + (f' ({wall:.0f}s)' if wall else ''))
    return out


def time_iters(args, corpus, n):
    """Time ``n`` training iterations (after one warm-up); prints it/s."""
    import torch
    from mmengine.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper

    cfg = proxy_cfg(args, corpus)
    torch.manual_seed(train_seed(args))
    model = MODELS.build(cfg.model)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    bs = cfg.train_dataloader.batch_size
    t0 = None
    for i in range(n + 1):
        if i == 1:
            t0 = time.perf_counter()
        batch = pseudo_collate([ds[(i * bs + j) % len(ds)]
                                for j in range(bs)])
        model.train_step(batch, optim)
    dt = (time.perf_counter() - t0) / n
    iters = -(-len(ds) // bs)
    log(f'{dt:.2f} s/iter at batch {bs} ({bs / dt:.1f} img/s); one epoch '
        f'= {iters} iters = {iters * dt / 60:.1f} min')
    return dt


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Build the proxy CLIP of the synthetic world (cached)')
    parser.add_argument('--config', default=PROXY_CONFIG)
    parser.add_argument('--data-root',
                        default=osp.join(ROOT, 'data', 'synthetic_rich'),
                        help='rich-caption corpus folder')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                       'proxy'))
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the corpus (and of training, unless '
                        '--train-seed is given)')
    parser.add_argument('--train-seed', type=int, default=None,
                        help='another training seed on the same corpus '
                        '(use with its own --work-dir)')
    parser.add_argument('--num-train', type=int, default=10000)
    parser.add_argument('--num-val', type=int, default=500)
    parser.add_argument('--workers', type=int, default=1)
    parser.add_argument('--epochs', type=int, default=None,
                        help='override the config schedule')
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--fresh', action='store_true',
                        help='retrain even when cached')
    parser.add_argument('--from-run', default=None,
                        help='adopt this finished tools/train.py run (its '
                        'work dir) of the proxy config instead of training')
    parser.add_argument('--time-iters', type=int, default=0,
                        help='only time this many iterations')
    args = parser.parse_args(argv)
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    log('[1/2] rich-caption corpus')
    corpus = step_rich_captions(args)
    if args.time_iters:
        return time_iters(args, corpus, args.time_iters)
    log(f'[2/2] proxy CLIP ({PROXY_ARCH})')
    out = step_proxy_clip(args, corpus)
    stamp = json.load(open(osp.join(args.work_dir, 'proxy_clip', 'done.json')))
    for e, loss, n in stamp.get('epoch_loss', [])[-5:]:
        log(f'epoch {e}: mean loss {loss:.4f} ({n} logs)')
    return out
