"""Helpers for tests that run the command-line tools on a tiny config."""
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PY = sys.executable
TINY_CONFIG = osp.join(
    ROOT, 'configs/quickstart/'
    'fpn_clip-synth-rn_1xb8-1k_synthetic-flat-128x128.py')


def make_tiny_world(out_dir, styles=('flat', )):
    """A minimal synthetic world: 64 px, 8 train / 4 val images a style."""
    from clipdense.datasets.synthetic import generate_world
    return generate_world(str(out_dir), seed=0, size=64, num_train=8,
                          num_val=4, styles=styles, parts=('seg', ),
                          progress=False)


def tiny_options(world, max_iters, interval, batch=2, extra=()):
    """``--cfg-options`` that shrink :data:`TINY_CONFIG` to a few
    iterations on ``world``."""
    return [
        '--cfg-options', f'train_dataloader.dataset.data_root={world}',
        f'val_dataloader.dataset.data_root={world}',
        f'test_dataloader.dataset.data_root={world}',
        f'train_dataloader.batch_size={batch}',
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}',
        f'default_hooks.checkpoint.interval={interval}',
        'default_hooks.logger.interval=1', *extra
    ]


def run_tool(args, timeout=600, env=None, check=True):
    """Run a command from the repository root; on failure (with ``check``)
    raise with the tail of its output."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc
