"""DenseCLIP's paper configs set the switches that make them behave as the
authors' code (configs/denseclip/README.md, "Differences from the authors'
code"), and still run in one process (no SyncBN type; MMEngine's
``sync_bn`` converts BN only when distributed)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from clipdense.testing.runs import ROOT


def _paper(pattern):
    return sorted(p for p in glob.glob(osp.join(ROOT, 'configs', pattern))
                  if 'synthetic' not in p)


SEG = _paper('denseclip/*ade20k*.py')
DET = _paper('denseclip_det/*coco*.py')


def _types(node):
    if isinstance(node, dict):
        found = [node['type']] if isinstance(node.get('type'), str) else []
        return found + [t for v in node.values() for t in _types(v)]
    if isinstance(node, (list, tuple)):
        return [t for v in node for t in _types(v)]
    return []


def test_paper_configs_found():
    assert len(SEG) >= 7 and len(DET) >= 8


@pytest.mark.parametrize('path', SEG + DET, ids=[osp.relpath(p, ROOT) for p in SEG + DET])
def test_paper_config_sync_bn_and_one_process(path):
    cfg = Config.fromfile(path)
    assert cfg.get('sync_bn') == 'torch'
    assert not [t for t in _types(cfg.model.to_dict()) if 'SyncBN' in t]


@pytest.mark.parametrize('path', [p for p in SEG + DET
                                  if osp.basename(p).startswith('denseclip')],
                         ids=lambda p: osp.basename(p))
def test_denseclip_paper_switches(path):
    model = Config.fromfile(path).model
    det = 'denseclip_det' in path
    assert model.context_init_std == 1.0
    assert model.context_decoder.attn_impl == 'denseclip'
    bb = model.backbone
    if det:
        assert (bb.pos_embed_mode, bb.pos_embed_size) == ('bilinear-once-crop', 1344)
        assert model.seg_target_rounding == 'truncate'
    elif 'vit' in path:
        assert (bb.pos_embed_mode, bb.pos_embed_size) == ('bilinear-once-trainable', 640)
        assert bb.pyramid_norm == 'group' and bb.drop_path_rate == 0.1
        assert bb.class_embed_twice is True
    else:
        assert (bb.pos_embed_mode, bb.pos_embed_size) == ('bilinear-once-trainable', 512)
