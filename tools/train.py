"""Train a clipdense (mmseg or mmdet) config with an MMEngine runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
"""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a clipdense model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT; without a value, from the newest complete '
        'checkpoint in the work dir (a fresh start if there is none)')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
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
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args):
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.resume is not None:
        from clipdense.engine.checkpoint import (find_resumable_checkpoint,
                                                 remove_stale_temporaries)
        if args.resume == 'auto':
            ckpt = find_resumable_checkpoint(cfg.work_dir)
            if int(os.environ.get('RANK', '0')) == 0:
                remove_stale_temporaries(cfg.work_dir)
            if ckpt is None:
                print_log(f'--resume: no complete checkpoint in '
                          f'{cfg.work_dir}; starting from scratch.',
                          logger='current', level=logging.WARNING)
                cfg.resume = False
            else:
                print_log(f'--resume: resuming from {ckpt}', logger='current')
                cfg.resume = True
                cfg.load_from = ckpt
        else:
            if not osp.isfile(args.resume):
                raise FileNotFoundError(
                    f'--resume {args.resume}: no such checkpoint file')
            cfg.resume = True
            cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint:
        os.environ['CLIPDENSE_TRUST_CHECKPOINTS'] = '1'

    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = build_cfg(args)

    from clipdense.engine.dist import prepare_distributed
    prepare_distributed(cfg, args.launcher)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        from mmengine.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
