"""run_and_teardown (tools/train.py, tools/test.py): worker pools joined and
the process group destroyed at the end of a run, also when it fails."""
import types

import pytest
import torch
import torch.distributed as dist

from clipdense.engine.launch import run_and_teardown



def _runner_with_workers(result=None, error=None):
    loader = torch.utils.data.DataLoader(list(range(8)), batch_size=2,
                                         num_workers=1,
                                         persistent_workers=True)
    next(iter(loader))  # start the persistent worker
    workers = loader._iterator._workers
    assert workers and all(w.is_alive() for w in workers)

    def train():
        if error:
            raise error
        return result

    runner = types.SimpleNamespace(
        _train_loop=types.SimpleNamespace(dataloader=loader),
        _val_loop={'type': 'ValLoop'},  # never built: left alone
        train=train)
    return runner, loader, workers


@pytest.fixture
def group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_success_joins_workers_and_destroys_the_group(group):
    runner, loader, workers = _runner_with_workers(result='done')
    assert run_and_teardown(lambda: runner, 'train') == 'done'
    assert not dist.is_initialized()
    assert loader._iterator is None
    assert not any(w.is_alive() for w in workers)


def test_failure_still_tears_down_and_reraises(group):
    runner, loader, workers = _runner_with_workers(error=KeyError('boom'))
    with pytest.raises(KeyError, match='boom'):
        run_and_teardown(lambda: runner, 'train')
    assert not dist.is_initialized()
    assert not any(w.is_alive() for w in workers)


def test_a_failed_build_destroys_the_group(group):
    def build():
        raise FileNotFoundError('no config')

    with pytest.raises(FileNotFoundError):
        run_and_teardown(build, 'test')
    assert not dist.is_initialized()
