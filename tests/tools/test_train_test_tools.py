"""tools/train.py, tools/test.py and tools/dist_train.sh end to end on a tiny
config: resume, SIGKILL-then-resume, hostile checkpoints, gloo processes."""
import os
import os.path as osp
import re
import signal
import subprocess
import time

import pytest
import torch

from clipdense.engine.checkpoint import (find_resumable_checkpoint,
                                         is_complete_checkpoint,
                                         safe_torch_load)
from clipdense.testing.runs import (PY, ROOT, TINY_CONFIG, run_tool,
                                     tiny_options)

pytestmark = pytest.mark.slow


def ckpt_iter(path):
    return safe_torch_load(path)['meta']['iter']


def test_train_stop_resume_and_test(tiny_world, tmp_path):
    work = str(tmp_path / 'work')
    run_tool([PY, 'tools/train.py', TINY_CONFIG, '--work-dir', work,
              *tiny_options(tiny_world, 2, 2)])
    assert ckpt_iter(osp.join(work, 'iter_2.pth')) == 2

    # stop at 2, then --resume continues from the saved iteration to 4
    proc = run_tool([PY, 'tools/train.py', TINY_CONFIG, '--work-dir', work,
                     '--resume', *tiny_options(tiny_world, 4, 2)])
    out = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 2' in out
    assert re.search(r'Iter\(train\) \[3/4\]', out)
    assert not re.search(r'Iter\(train\) \[1/4\]', out)
    assert ckpt_iter(osp.join(work, 'iter_4.pth')) == 4

    # evaluation through tools/test.py prints the metric table
    proc = run_tool([PY, 'tools/test.py', TINY_CONFIG,
                     osp.join(work, 'iter_4.pth'), '--work-dir', work,
                     *tiny_options(tiny_world, 4, 2)])
    full = re.search(r'mIoU: (\d+\.\d+)', proc.stdout + proc.stderr)
    assert full
    # labels without full-size logits (issue 13): the config's mmseg
    # EncoderDecoder is switched by tools/test.py; same labels, same mIoU
    proc = run_tool([PY, 'tools/test.py', TINY_CONFIG,
                     osp.join(work, 'iter_4.pth'), '--work-dir', work,
                     *tiny_options(tiny_world, 4, 2,
                                   extra=['model.test_cfg.labels_only=True'])])
    fast = re.search(r'mIoU: (\d+\.\d+)', proc.stdout + proc.stderr)
    assert fast and abs(float(fast.group(1)) - float(full.group(1))) < 0.05

    # reduced precision (issue 13): bf16 on the CPU runs and evaluates ...
    proc = run_tool([PY, 'tools/test.py', TINY_CONFIG,
                     osp.join(work, 'iter_4.pth'), '--work-dir', work,
                     '--precision', 'bf16', *tiny_options(tiny_world, 4, 2)])
    assert re.search(r'mIoU: \d', proc.stdout + proc.stderr)
    # ... fp16 on the CPU is refused with the fix named
    proc = run_tool([PY, 'tools/test.py', TINY_CONFIG,
                     osp.join(work, 'iter_4.pth'), '--work-dir', work,
                     '--precision', 'fp16', *tiny_options(tiny_world, 4, 2)],
                    check=False)
    assert proc.returncode != 0
    assert 'use --precision bf16' in proc.stdout + proc.stderr


def test_sigkill_then_resume(tiny_world, tmp_path):
    work = str(tmp_path / 'work')
    opts = tiny_options(tiny_world, 500, 1, batch=1,
                        extra=['default_hooks.checkpoint.max_keep_ckpts=2'])
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([PY, 'tools/train.py', TINY_CONFIG, '--work-dir',
                             work, *opts], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if osp.isfile(osp.join(work, 'iter_3.pth')):
                break
            assert proc.poll() is None, 'training died before the kill'
            time.sleep(0.05)
        else:
            pytest.fail('no checkpoint within 300 s')
        # a few more saves are under way when the kill lands
        time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # nothing partial is named or kept under a checkpoint name
    ckpt = find_resumable_checkpoint(work)
    assert ckpt is not None and is_complete_checkpoint(ckpt)
    for name in os.listdir(work):
        if name.endswith('.pth'):
            assert is_complete_checkpoint(osp.join(work, name)), name
    start = ckpt_iter(ckpt)
    assert start >= 3

    target = start + 2
    proc = run_tool([PY, 'tools/train.py', TINY_CONFIG, '--work-dir', work,
                     '--resume', *tiny_options(tiny_world, target, 1,
                                               batch=1)])
    out = proc.stdout + proc.stderr
    assert f'resumed epoch: 0, iter: {start}' in out
    assert ckpt_iter(osp.join(work, f'iter_{target}.pth')) == target
    # no temporaries of the killed save are left behind
    assert not [n for n in os.listdir(work) if n.endswith('.tmp')]


def test_tools_refuse_hostile_checkpoint(tiny_world, tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:

        def __reduce__(self):
            return (open, (str(marker), 'w'))

    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'meta': Payload()}, bad)
    proc = run_tool([PY, 'tools/test.py', TINY_CONFIG, str(bad),
                     '--work-dir', str(tmp_path / 'w'),
                     *tiny_options(tiny_world, 2, 2)], check=False)
    assert proc.returncode != 0
    assert 'Refusing to load checkpoint' in proc.stderr
    assert '--trust-checkpoint' in proc.stderr
    assert not marker.exists()


def test_dist_train_two_gloo_processes(tiny_world, tmp_path):
    work = str(tmp_path / 'work')
    port = str(29500 + os.getpid() % 2000)
    proc = run_tool(['bash', 'tools/dist_train.sh', TINY_CONFIG, '2',
                     '--work-dir', work, *tiny_options(tiny_world, 2, 2,
                                                       batch=1)],
                    env=dict(PORT=port, CLIPDENSE_PYTHON=PY))
    out = proc.stdout + proc.stderr
    assert 'Distributed training: True' in out
    assert re.search(r'GPU number: 2|world_size: 2', out), out[-2000:]
    assert ckpt_iter(osp.join(work, 'iter_2.pth')) == 2
