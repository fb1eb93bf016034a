"""What ``tools/train.py`` and ``tools/test.py`` share: the common
arguments, the config with its overrides, and the runner."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='allow full unpickling of checkpoints (only for files you '
        'trust; sets CLIPDENSE_TRUST_CHECKPOINTS=1)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def setup_from_args(args) -> None:
    """Environment and registries for a tool run."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.trust_checkpoint:
        os.environ['CLIPDENSE_TRUST_CHECKPOINTS'] = '1'
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)


def load_config(args) -> Config:
    """``args.config`` with ``--cfg-options``, the launcher and the work
    dir (CLI > config > ``./work_dirs/<config name>``)."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg):
    """The config's runner, after the CPU distributed set-up if needed."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from clipdense.engine.dist import prepare_distributed
    prepare_distributed(cfg, cfg.get('launcher', 'none'))
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def run_and_teardown(build, action: str):
    """Build a runner with ``build()``, call its ``action`` (``'train'`` or
    ``'test'``) and end the run cleanly whatever happens: dataloader
    workers joined, then the process group destroyed (after a barrier when
    the run succeeded), so that no rank dies at interpreter exit with
    ``terminate called without an active exception`` from threads of a
    process group or of worker pools still alive."""
    runner = None
    ok = False
    try:
        runner = build()
        result = getattr(runner, action)()
        ok = True
        return result
    finally:
        teardown(runner, synchronize=ok)


def teardown(runner=None, synchronize: bool = True) -> None:
    """Join ``runner``'s dataloader workers and destroy the default process
    group if one is initialised (see :func:`run_and_teardown`)."""
    if runner is not None:
        for attr in ('_train_loop', '_val_loop', '_test_loop'):
            loop = getattr(runner, attr, None)
            loader = getattr(loop, 'dataloader', None)
            iterator = getattr(loader, '_iterator', None)
            shutdown = getattr(iterator, '_shutdown_workers', None)
            if shutdown is not None:
                shutdown()
                loader._iterator = None
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if synchronize:  # every rank is done with its collectives
            dist.barrier()
    finally:
        dist.destroy_process_group()
