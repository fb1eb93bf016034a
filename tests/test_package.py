"""Import-time version check and the registry scopes."""
import pytest
from importlib import metadata


def test_version_check_names_the_fix():
    from clipdense import MM_VERSION_WINDOW, check_mm_versions
    check_mm_versions()  # the installed stack is inside the window

    fake = {'mmcv': '2.2.0', 'mmengine': '0.10.7',
            'mmsegmentation': '1.2.2'}

    def get_version(pkg):
        if pkg not in fake:
            raise metadata.PackageNotFoundError(pkg)
        return fake[pkg]

    with pytest.raises(ImportError) as err:
        check_mm_versions(MM_VERSION_WINDOW, get_version)
    msg = str(err.value)
    assert 'mmcv 2.2.0 is installed' in msg and 'mmcv==2.1.0' in msg
    assert 'mmdet is not installed' in msg and 'mmdet==3.3.0' in msg
    assert 'mmengine' not in msg


def test_registries_are_children_of_mmseg():
    from mmseg.registry import MODELS as MMSEG_MODELS

    from clipdense.registry import DATASETS, MODELS
    assert MODELS.scope == 'clipdense' and MODELS.parent is MMSEG_MODELS
    assert DATASETS.parent.scope == 'mmseg'
    # unprefixed mmseg names resolve through the parent, mmdet with a prefix
    assert MODELS.get('FPNHead').__module__.startswith('mmseg.')
    assert MODELS.get('mmdet.RetinaNet').__module__.startswith('mmdet.')


def test_mmdet_registry_resolves_clipdense_names():
    import torch.nn as nn
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.model import BaseModule

    from clipdense.registry import MODELS

    @MODELS.register_module(force=True)
    class _ScopeProbe(BaseModule):

        def __init__(self, width=3):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 1)

    assert MMDET_MODELS.get('clipdense._ScopeProbe') is _ScopeProbe
