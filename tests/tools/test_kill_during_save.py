"""clipdense's CheckpointHook: a stop during a save never leaves the run
without its last good checkpoint (issue 26.2).

MMEngine's hook deletes the outdated checkpoint before it writes the new
one; with ``max_keep_ckpts=1`` a SIGKILL during the write left nothing. Here
a training subprocess (tools/train.py on the tiny synthetic config,
checkpoint interval 1, ``max_keep_ckpts=1``) runs with a slowed-down disk
(its launcher script, written by the test, makes each checkpoint write
pause halfway and say so) and is SIGKILLed in the middle of saves, twice
(the second time in a save chosen at random); after every kill a complete,
loadable checkpoint is named by ``last_checkpoint`` and ``--resume``
continues from it.
"""
import os
import os.path as osp
import random
import signal
import subprocess
import textwrap
import time

import pytest
from mmengine.hooks import CheckpointHook as MMCheckpointHook
from mmengine.registry import HOOKS as MM_HOOKS
from mmengine.registry import DefaultScope

from clipdense.engine import CheckpointHook
from clipdense.engine.checkpoint import (find_resumable_checkpoint,
                                         is_complete_checkpoint,
                                         safe_torch_load)
from clipdense.testing.runs import PY, ROOT, TINY_CONFIG, tiny_options

LAUNCHER = textwrap.dedent('''
    """tools/train.py with a slow disk: every checkpoint write stops halfway
    for SLOW_SAVE_S seconds after printing SAVING <path>."""
    import os, runpy, sys, tempfile, time
    from clipdense.engine import checkpoint as ck

    delay = float(os.environ['SLOW_SAVE_S'])

    def slow_put(self, obj, filepath):
        filepath = os.fspath(filepath)
        if not filepath.endswith('.pth'):
            return ck.atomic_write_bytes(filepath, obj)
        folder = os.path.dirname(os.path.abspath(filepath))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' +
                                   os.path.basename(filepath) + '.',
                                   suffix='.tmp')
        with os.fdopen(fd, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            print('SAVING', filepath, flush=True)
            time.sleep(delay)
            f.write(obj[len(obj) // 2:])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)

    ck.AtomicLocalBackend.put = slow_put
    sys.argv = [os.path.join(ROOT, 'tools', 'train.py')] + sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name='__main__')
''')


def test_registered_under_mmengines_name_in_the_clipdense_scope():
    with DefaultScope.overwrite_default_scope('clipdense'):
        hook = MM_HOOKS.build(dict(type='CheckpointHook', interval=1,
                                   max_keep_ckpts=1))
    assert type(hook) is CheckpointHook
    assert isinstance(hook, MMCheckpointHook)
    with DefaultScope.overwrite_default_scope('mmdet'):
        hook = MM_HOOKS.build(dict(type='clipdense.CheckpointHook'))
    assert type(hook) is CheckpointHook


def _start(launcher, work, world, max_iters, resume, delay):
    opts = tiny_options(world, max_iters, 1, batch=1, extra=[
        'default_hooks.checkpoint.max_keep_ckpts=1'])
    args = [PY, launcher, TINY_CONFIG, *(['--resume'] if resume else []),
            '--work-dir', work, *opts]
    env = dict(os.environ, OMP_NUM_THREADS='1', SLOW_SAVE_S=str(delay),
               PYTHONPATH=ROOT)
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _kill_during_save(proc, nth_save, timeout=120):
    """SIGKILL ``proc`` while its ``nth_save``-th checkpoint is half
    written; returns the output so far."""
    seen, lines = 0, []
    deadline = time.time() + timeout
    for line in proc.stdout:
        lines.append(line)
        if line.startswith('SAVING '):
            seen += 1
            if seen == nth_save:
                time.sleep(0.2)  # well inside the pause
                break
        if time.time() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert seen == nth_save, ''.join(lines[-30:])
    return ''.join(lines)


def _check_resumable(work):
    """A complete checkpoint is named by last_checkpoint and loads."""
    pointer = osp.join(work, 'last_checkpoint')
    assert osp.isfile(pointer), 'no last_checkpoint'
    named = open(pointer).read().strip()
    assert is_complete_checkpoint(named), f'last_checkpoint names {named!r}'
    assert find_resumable_checkpoint(work) == named
    ckpt = safe_torch_load(named)
    assert 'state_dict' in ckpt and 'optimizer' in ckpt
    return ckpt['meta']['iter']


@pytest.mark.slow
def test_sigkill_during_saves_keeps_a_checkpoint(tiny_world, tmp_path):
    launcher = str(tmp_path / 'slow_train.py')
    with open(launcher, 'w') as f:
        f.write(f'ROOT = {ROOT!r}\n' + LAUNCHER)
    work = str(tmp_path / 'work')
    rng = random.Random(int(os.environ.get('CLIPDENSE_TEST_SEED', '0')))
    # 1. killed in the middle of its 2nd save: iter_2 half written, and
    #    MMEngine's hook would already have deleted iter_1
    out = _kill_during_save(_start(launcher, work, tiny_world, 50, False, 0.5),
                            2)
    last = _check_resumable(work)
    assert last == 1
    # 2. resumed, killed in the middle of a save chosen at random
    nth = rng.randint(1, 3)
    out = _kill_during_save(_start(launcher, work, tiny_world, 50, True, 0.5),
                            nth)
    assert f'resumed epoch: 0, iter: {last}' in out
    now = _check_resumable(work)
    assert now == last + nth - 1
    last = now
    # 3. resumed to the end: continues from the last complete checkpoint,
    #    and the outdated files the kills left behind are gone
    target = last + 2
    proc = _start(launcher, work, tiny_world, target, True, 0.0)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert f'resumed epoch: 0, iter: {last}' in out
    assert _check_resumable(work) == target
    kept = sorted(n for n in os.listdir(work) if n.endswith('.pth'))
    assert kept == [f'iter_{target}.pth'], kept
    assert not [n for n in os.listdir(work) if n.endswith('.tmp')]
