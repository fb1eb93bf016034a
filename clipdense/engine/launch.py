"""What ``tools/train.py`` and ``tools/test.py`` share: the common
arguments, the config with its overrides, and the runner."""
import argparse
import os
import os.path as osp
import sys

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
    if not osp.isfile(args.config):
        raise FileNotFoundError(
            f'config file not found: {args.config}; give the path of a config '
            'file, e.g. configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        from clipdense.utils.cfg_options import check_cfg_options
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    if getattr(args, 'allow_partial_load', False):
        cfg.allow_partial_load = True
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


def user_errors() -> tuple:
    """The exceptions a tool reports as ``error: <message>`` (exit status
    2) instead of a traceback: bad paths, configs, ``--cfg-options`` keys
    and checkpoints (unsafe, truncated, not fitting the model)."""
    from clipdense.fileio import UnsafeCheckpointError
    from clipdense.engine.strict_load import CheckpointError
    from clipdense.utils.cfg_options import CfgOptionsError
    return (FileNotFoundError, IsADirectoryError, UnsafeCheckpointError,
            CheckpointError, CfgOptionsError)


def run_main(main, argv=None) -> None:
    """``sys.exit(main(argv))`` for a tool, printing the user errors of
    :func:`user_errors` as one ``error:`` line (exit status 2). Set
    ``CLIPDENSE_DEBUG=1`` for the traceback."""
    try:
        status = main(argv)
    except user_errors() as err:
        if os.environ.get('CLIPDENSE_DEBUG', '').strip() not in ('', '0'):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {msg}', file=sys.stderr)
        sys.exit(2)
    sys.exit(status if isinstance(status, int) else 0)


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
