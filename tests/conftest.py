import os

# Tests never touch the network: open_clip / huggingface must fail fast.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_configure(config):
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=True)


@pytest.fixture(autouse=True)
def _seed_and_scope():
    """Every test starts seeded and in the clipdense default scope (a Runner
    built by an earlier test leaves its own scope current)."""
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('clipdense'):
        yield
