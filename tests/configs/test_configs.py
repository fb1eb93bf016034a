"""Every config under configs/ builds (weights off)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope

from clipdense.apis.benchmark import weights_off
from clipdense.testing.runs import ROOT

CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p.split(osp.sep))


def test_there_are_configs():
    assert len(CONFIGS) > 0


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    scope = cfg.get('default_scope', 'clipdense')
    model_cfg = weights_off(cfg.model.to_dict())
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS as ROOT_MODELS
        registry = ROOT_MODELS._search_child(scope)
        assert registry is not None, f'unknown scope {scope}'
        # ConfigDict, as the runner passes it: mmdet's two-stage detectors
        # read train_cfg.rpn as an attribute
        model = registry.build(ConfigDict(model_cfg))
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params > 0
    for key in ('train_dataloader', 'optim_wrapper', 'train_cfg'):
        assert key in cfg, f'{path} has no {key}'
