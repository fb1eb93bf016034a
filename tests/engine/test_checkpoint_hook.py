"""clipdense's CheckpointHook in process: a save that dies leaves the
previous checkpoint (and the previous best one) on disk and named, where
MMEngine's hook has already deleted it. The SIGKILL version of this is
tests/tools/test_kill_during_save.py."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import CheckpointHook as MMCheckpointHook
from mmengine.runner import Runner

from clipdense.engine import CheckpointHook
from clipdense.engine.checkpoint import (find_resumable_checkpoint,
                                         is_complete_checkpoint,
                                         safe_torch_load)

from test_checkpoint import ToyDataset, ToyModel


def make_runner(work_dir, hook_cls, max_iters, **hook_kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type=hook_cls, by_epoch=False,
                                           **hook_kwargs)),
        default_scope='mmengine',
        experiment_name=f'{hook_cls.__module__}-{max_iters}-{id(work_dir)}')


class DiskDied(OSError):
    pass


def _die_on_save(runner, at_iter):
    real = runner.save_checkpoint

    def save(out_dir, filename, *args, **kwargs):
        if filename == f'iter_{at_iter}.pth':
            raise DiskDied('killed during the save')
        return real(out_dir, filename, *args, **kwargs)

    runner.save_checkpoint = save


@pytest.mark.parametrize('hook_cls', [CheckpointHook, MMCheckpointHook])
def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, hook_cls):
    runner = make_runner(tmp_path, hook_cls, 3, interval=1, max_keep_ckpts=1)
    _die_on_save(runner, 3)
    with pytest.raises(DiskDied):
        runner.train()
    kept = osp.join(tmp_path, 'iter_2.pth')
    if hook_cls is MMCheckpointHook:
        # the control: MMEngine deleted it before writing iter_3
        assert not osp.exists(kept)
        return
    assert is_complete_checkpoint(kept)
    assert find_resumable_checkpoint(str(tmp_path)) == kept
    assert open(osp.join(tmp_path, 'last_checkpoint')).read() == kept
    assert safe_torch_load(kept)['meta']['iter'] == 2


def test_outdated_files_of_a_stopped_run_are_removed_on_resume(tmp_path):
    runner = make_runner(tmp_path, CheckpointHook, 3, interval=1,
                         max_keep_ckpts=1)
    runner.train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_3.pth']
    # a stop between the pointer update and the deletion leaves iter_2
    torch.save({'meta': {'iter': 2}}, tmp_path / 'iter_2.pth')
    ck = safe_torch_load(str(tmp_path / 'iter_3.pth'))
    assert ck['message_hub']['runtime_info']['clipdense_stale_ckpt_ids'] == [2]
    resumed = make_runner(tmp_path, CheckpointHook, 4, interval=1,
                          max_keep_ckpts=1)
    resumed._resume = True
    resumed._load_from = str(tmp_path / 'iter_3.pth')
    resumed.train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_4.pth']


def test_unlimited_and_interval_behave_like_mmengine(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    for d, cls in ((a, CheckpointHook), (b, MMCheckpointHook)):
        make_runner(d, cls, 6, interval=2, max_keep_ckpts=2).train()
    names = sorted(p.name for p in a.glob('*.pth'))
    assert names == sorted(p.name for p in b.glob('*.pth'))
    assert names == ['iter_4.pth', 'iter_6.pth']
    c = tmp_path / 'c'
    make_runner(c, CheckpointHook, 3, interval=1).train()
    assert sorted(p.name for p in c.glob('*.pth')) == [
        'iter_1.pth', 'iter_2.pth', 'iter_3.pth']


def test_previous_best_survives_a_failed_best_save(tmp_path):
    runner = make_runner(tmp_path, CheckpointHook, 2, interval=1,
                         save_best='acc', rule='greater')
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, CheckpointHook))
    hook._save_best_checkpoint(runner, {'acc': 0.5})
    first = hook.best_ckpt_path
    assert is_complete_checkpoint(first)
    # a later, better evaluation replaces it once the new one is written
    runner.train_loop._iter = 4
    hook._save_best_checkpoint(runner, {'acc': 0.9})
    second = hook.best_ckpt_path
    assert second != first and is_complete_checkpoint(second)
    assert not osp.exists(first)
    # the next one dies while being written: the previous best stays
    runner.train_loop._iter = 6
    real = runner.save_checkpoint

    def save(out_dir, filename, *args, **kwargs):
        if filename.startswith('best_'):
            raise DiskDied('killed during the save')
        return real(out_dir, filename, *args, **kwargs)

    runner.save_checkpoint = save
    with pytest.raises(DiskDied):
        hook._save_best_checkpoint(runner, {'acc': 0.95})
    assert is_complete_checkpoint(second), 'the previous best was deleted'
