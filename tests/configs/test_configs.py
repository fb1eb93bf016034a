"""Every config under configs/ builds (weights off)."""
import glob
import re
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


# mmengine replaces ``{{_base_.x}}`` by a placeholder variable name when the
# reference is part of an expression (``{{_base_.data_root}} + '/train'``),
# and the placeholder survives into the config as a string such as
# '_data_root_7645de/train'.
_PLACEHOLDER = re.compile(r'_[A-Za-z]\w*_[0-9a-f]{6}(?![0-9a-f])')


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_no_unresolved_base_reference(path):
    cfg = Config.fromfile(path)
    bad = [s for s in _strings(cfg.to_dict()) if _PLACEHOLDER.search(s)]
    assert not bad, (f'{path}: a {{{{_base_.x}}}} reference inside an expression '
                     f'was left as a placeholder: {bad[:3]}; write the value '
                     'itself or a whole-value reference')


def test_placeholder_pattern_catches_mmengine_leftovers(tmp_path):
    base = tmp_path / 'base.py'
    base.write_text("data_root = 'data/x'\n")
    leaf = tmp_path / 'leaf.py'
    leaf.write_text("_base_ = ['./base.py']\n"
                    "p = {{_base_.data_root}} + '/train'\n")
    cfg = Config.fromfile(str(leaf))
    assert any(_PLACEHOLDER.search(s) for s in _strings(cfg.to_dict()))
