"""Checkpoint safety: resume under weights_only=True, hostile pickles refused,
atomic writes, and a resumable checkpoint is never a partial file."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

from clipdense.engine.checkpoint import (AtomicLocalBackend,
                                         UnsafeCheckpointError,
                                         atomic_write_bytes,
                                         find_resumable_checkpoint,
                                         is_complete_checkpoint,
                                         safe_torch_load)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.linear(inputs)
        if mode == 'loss':
            target = torch.stack(data_samples) if isinstance(
                data_samples, list) else data_samples
            return dict(loss=((out - target)**2).mean())
        return out


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict()

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        x = torch.full((2, ), float(idx))
        return dict(inputs=x, data_samples=x.sum(0, keepdim=True))


class RecordIters(Hook):

    def __init__(self):
        self.iters = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iters.append(runner.iter)


def make_runner(work_dir, max_iters, name, **kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        default_scope='mmengine',
        experiment_name=name,
        **kwargs)


def test_plain_torch_load_needs_the_allow_list(tmp_path):
    """The problem this module fixes: an MMEngine checkpoint does not load
    with torch's default weights_only=True until the allow-list is in."""
    runner = make_runner(tmp_path, 2, 'plain')
    runner.train()
    ckpt = osp.join(tmp_path, 'iter_2.pth')
    code = (
        'import sys, torch\n'
        'try:\n'
        f'    torch.load({ckpt!r}, weights_only=True)\n'
        '    print("LOADED")\n'
        'except Exception as e:\n'
        '    print("FAILED", type(e).__name__)\n'
        'from clipdense.engine.checkpoint import install_checkpoint_safety\n'
        'install_checkpoint_safety()\n'
        f'ck = torch.load({ckpt!r}, weights_only=True)\n'
        'print("AFTER", ck["meta"]["iter"])\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert 'FAILED UnpicklingError' in out
    assert 'AFTER 2' in out


def test_resume_continues_from_saved_iteration(tmp_path):
    first = make_runner(tmp_path, 4, 'first')
    first.train()
    assert is_complete_checkpoint(osp.join(tmp_path, 'iter_4.pth'))
    weights = first.model.linear.weight.detach().clone()

    ckpt = find_resumable_checkpoint(str(tmp_path))
    assert ckpt == osp.join(tmp_path, 'iter_4.pth')
    rec = RecordIters()
    second = make_runner(tmp_path, 6, 'second', resume=True, load_from=ckpt,
                         custom_hooks=[rec])
    second.train()
    assert rec.iters == [4, 5]
    assert second.iter == 6
    # it really continued from the saved weights, not from a new init
    ck4 = safe_torch_load(ckpt)
    torch.testing.assert_close(ck4['state_dict']['linear.weight'], weights)
    assert ck4['meta']['iter'] == 4


class Payload:
    """An object whose unpickling runs code (writes a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_hostile_checkpoint_is_refused_and_does_not_run(tmp_path,
                                                         monkeypatch):
    marker = tmp_path / 'pwned'
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'evil': Payload(str(marker))}, bad)
    assert not marker.exists()
    monkeypatch.delenv('CLIPDENSE_TRUST_CHECKPOINTS', raising=False)
    with pytest.raises(UnsafeCheckpointError, match='CLIPDENSE_TRUST_CHECKP'):
        _load_checkpoint(str(bad), map_location='cpu')  # MMEngine's loader
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(str(bad))
    assert not marker.exists(), 'the payload ran while loading'

    # The explicit opt-in loads a trusted old checkpoint with full pickling.
    monkeypatch.setenv('CLIPDENSE_TRUST_CHECKPOINTS', '1')
    with pytest.warns(UserWarning, match='full unpickling'):
        _load_checkpoint(str(bad), map_location='cpu')
    assert marker.exists()


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / 'iter_2.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(target))
    from mmengine.fileio import get_file_backend
    assert isinstance(get_file_backend(str(target)), AtomicLocalBackend)
    good = target.read_bytes()

    # A crash in the middle of the write (here: fsync fails) leaves the old
    # file untouched and no temporary behind.
    def boom(fd):
        raise OSError('disk died')

    monkeypatch.setattr(os, 'fsync', boom)
    with pytest.raises(OSError, match='disk died'):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(target))
    monkeypatch.undo()
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_2.pth']

    atomic_write_bytes(tmp_path / 'sub' / 'x.txt', b'abc')
    assert (tmp_path / 'sub' / 'x.txt').read_bytes() == b'abc'


def test_find_resumable_checkpoint_skips_partial_files(tmp_path):
    assert find_resumable_checkpoint(str(tmp_path)) is None
    for it in (2, 4):
        torch.save({'meta': {'iter': it}}, tmp_path / f'iter_{it}.pth')
    # iter_6 was cut short by a kill and the pointer names it
    full = (tmp_path / 'iter_4.pth').read_bytes()
    (tmp_path / 'iter_6.pth').write_bytes(full[:len(full) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    assert not is_complete_checkpoint(str(tmp_path / 'iter_6.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path /
                                                          'iter_4.pth')
    # an empty pointer (killed while writing it) falls back the same way
    (tmp_path / 'last_checkpoint').write_text('')
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path /
                                                          'iter_4.pth')
    # a good pointer is trusted
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path /
                                                          'iter_2.pth')


def test_remove_stale_temporaries_of_checkpoints_and_pointer(tmp_path):
    from clipdense.engine.checkpoint import remove_stale_temporaries
    left = ['.iter_3.pth.a1b2.tmp', '.last_checkpoint.qqp6vwvy.tmp']
    kept = ['iter_3.pth', 'last_checkpoint', '.notes.tmp', 'x.tmp']
    for name in left + kept:
        (tmp_path / name).write_bytes(b'x')
    assert remove_stale_temporaries(str(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
