import pytest

from clipdense.testing.runs import make_tiny_world


@pytest.fixture(scope='session')
def tiny_world(tmp_path_factory):
    """A minimal synthetic world (source style, segmentation only)."""
    out = tmp_path_factory.mktemp('world') / 'synthetic'
    make_tiny_world(out)
    return str(out)
