"""Train a clipdense (mmseg or mmdet) config with an MMEngine runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm]

A missing config, a --cfg-options key that does not exist (the closest one
is named) or an unreadable checkpoint end with one ``error:`` line and exit
status 2 (``CLIPDENSE_DEBUG=1``: traceback).
"""
import argparse
import logging
import os
import os.path as osp

from mmengine.logging import print_log

from clipdense.engine.launch import (add_common_args, build_runner,
                                     load_config, run_and_teardown,
                                     setup_from_args)


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
    add_common_args(parser)
    return parser.parse_args(argv)


def build_cfg(args):
    cfg = load_config(args)

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
    setup_from_args(args)
    run_and_teardown(lambda: build_runner(build_cfg(args)), 'train')


if __name__ == '__main__':
    from clipdense.engine.launch import run_main
    run_main(main)
