"""Evaluate a checkpoint of a clipdense (mmseg or mmdet) config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR|FILE]
        [--show-dir DIR] [--show] [--tta] [--precision fp32|bf16|fp16]
        [--cfg-options k=v ...] [--allow-partial-load] [--trust-checkpoint]
        [--launcher none|pytorch|slurm]

Segmentation configs (default_scope 'clipdense' or 'mmseg') and detection
configs (default_scope 'mmdet') are both accepted; ``--out`` and
``--show-dir`` follow the conventions of mmseg's and mmdet's own test tools.
A checkpoint must fit the model (``--allow-partial-load`` to load what
matches); bad paths, checkpoints and ``--cfg-options`` keys end with one
``error:`` line and exit status 2 (``CLIPDENSE_DEBUG=1``: traceback).
"""
import argparse
import os.path as osp

from clipdense.engine.launch import (add_common_args, build_runner,
                                     load_config, run_and_teardown,
                                     setup_from_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a clipdense model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint',
        help="checkpoint file, or 'none' for models that need no training "
        '(e.g. zero-shot MaskCLIP with pretrained CLIP weights)')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='segmentation: a folder for the predicted label maps; '
        'detection: a .pkl file for the raw results')
    parser.add_argument('--show', action='store_true', help='show results')
    parser.add_argument(
        '--show-dir', help='folder where painted images will be saved')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    parser.add_argument(
        '--precision', choices=['fp32', 'bf16', 'fp16'], default='fp32',
        help='inference precision: bf16 on the CPU or CUDA, fp16 on CUDA '
        '(autocast; see clipdense/engine/loops.py)')
    parser.add_argument(
        '--allow-partial-load',
        action='store_true',
        help='load a checkpoint whose keys or shapes do not all match the '
        'model (what it lacks keeps the initial weights); refused by '
        'default. Same as allow_partial_load=True in the config')
    add_common_args(parser)
    return parser.parse_args(argv)


def is_detection(cfg) -> bool:
    return cfg.get('default_scope', 'clipdense') == 'mmdet'


def trigger_visualization_hook(cfg, args):
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks; refer to '
            "mmseg's or mmdet's default_runtime.py")
    hook = hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if is_detection(cfg):
            hook['test_out_dir'] = args.show_dir
        else:
            cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def build_cfg(args):
    cfg = load_config(args)
    # Testing needs no training parts. Dropping them also keeps mmseg's
    # visualization hook (its ``step=runner.iter``) from building the train
    # loop, i.e. the training dataset, which may not exist where one tests.
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler'):
        cfg[key] = None
    if args.checkpoint.lower() == 'none':
        cfg.load_from = None
    else:
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint {args.checkpoint} not found; pass a .pth file '
                "written by tools/train.py, or 'none' for a model that needs "
                'no training')
        cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if not is_detection(cfg):
        # mmseg's EncoderDecoder becomes SlideBatchEncoderDecoder: sliding
        # windows cost linear in the pixels (mmseg's loop: quadratic), and
        # test_cfg.slide_batch_size / labels_only (refused elsewhere)
        from clipdense.models.segmentors.batched_slide import \
            apply_inference_options
        apply_inference_options(cfg.model, batched_slide=True)
    if args.precision != 'fp32':
        cfg.test_cfg = dict(
            type=('clipdense.' if is_detection(cfg) else '') +
            'PrecisionTestLoop', precision=args.precision)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise RuntimeError(f'{args.config} has no tta_model/tta_pipeline; '
                               '--tta cannot be used with it')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        if is_detection(cfg):
            if not args.out.endswith(('.pkl', '.pickle')):
                raise ValueError('for detection configs --out must be a '
                                 '.pkl/.pickle file')
            evaluators = cfg.test_evaluator if isinstance(
                cfg.test_evaluator, list) else [cfg.test_evaluator]
            cfg.test_evaluator = [
                *evaluators,
                dict(type='mmdet.DumpDetResults', out_file_path=args.out)
            ]
        else:
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
    return cfg


def main(argv=None):
    args = parse_args(argv)
    setup_from_args(args)

    def build():
        cfg = build_cfg(args)
        runner = build_runner(cfg)
        if cfg.get('load_from') and not cfg.get('allow_partial_load', False):
            # MMEngine loads with strict=False (warnings only): refuse a
            # checkpoint that does not fit, naming the keys (or a truncated file)
            from clipdense.engine.strict_load import check_checkpoint_fits
            check_checkpoint_fits(runner.model, cfg.load_from)
        return runner

    return run_and_teardown(build, 'test')


if __name__ == '__main__':
    from clipdense.engine.launch import run_main
    run_main(main)
