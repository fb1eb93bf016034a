"""ClearCLIP (Lan et al., ECCV 2024) and SCLIP (Wang et al., ECCV 2024): the
last-block paths equal the papers' formulas written out by hand on a tiny
open_clip ViT, and both run end to end through tools/test.py (``none``
checkpoint) and demo/image_demo.py on a tiny synthetic world."""
import glob
import importlib.util
import os.path as osp

import cv2
import pytest
import torch
import torch.nn.functional as F

from clipdense.testing import register_tiny_models
from clipdense.testing.runs import ROOT, make_tiny_world

register_tiny_models()


def reference_last_block(blk, x, method):
    """The formula of each paper on a ``ResidualAttentionBlock`` (batch
    first), from the block's raw weights."""
    a = blk.attn
    h, (b, n, c) = a.num_heads, x.shape
    d = c // h
    y = F.layer_norm(x, (c, ), blk.ln_1.weight, blk.ln_1.bias, blk.ln_1.eps)
    q, k, v = (t.reshape(b, n, h, d).transpose(1, 2)
               for t in (y @ a.in_proj_weight.T + a.in_proj_bias).chunk(3, -1))
    qq = torch.softmax(q @ q.transpose(-1, -2) / d ** 0.5, -1)
    if method == 'clearclip':  # Proj(Attn_qq v): no residual, no FFN
        o = qq @ v
    else:  # SCLIP: (softmax(qq^T) + softmax(kk^T)) v, residual + FFN
        o = (qq + torch.softmax(k @ k.transpose(-1, -2) / d ** 0.5, -1)) @ v
    o = o.transpose(1, 2).reshape(b, n, c) @ a.out_proj.weight.T + a.out_proj.bias
    if method == 'clearclip':
        return o
    x = x + o
    return x + blk.mlp(blk.ln_2(x))


@pytest.mark.parametrize('method', ['clearclip', 'sclip'])
def test_last_block_equals_the_papers_formula(method):
    from clipdense.models.backbones import OpenCLIPViT
    torch.manual_seed(0)
    bb = OpenCLIPViT('clipdense-tiny-vit16', pretrained=None, pyramid=False,
                     out_indices=(-1, ), joint_outputs=(method, 'value')).eval()
    img = torch.randn(2, 3, 48, 80)
    # the tokens entering the last block, through the tower's own blocks
    x, grid, rope = bb._embed(bb._pad(img))
    for i in range(len(bb.blocks) - 1):
        x = bb._block(i, x, rope)
    v = bb.visual
    with torch.no_grad():
        ref = v.ln_post(reference_last_block(bb.blocks[-1], x, method)) @ v.proj
        ref = ref[:, 1:].transpose(1, 2).reshape(2, -1, *grid)
        out = bb(img)[-1]
    assert out[method].shape == (2, 32, 3, 5)
    torch.testing.assert_close(out[method], ref, rtol=1e-4, atol=1e-5)
    # a different path from MaskCLIP's
    assert not torch.allclose(out[method], out['value'], atol=1e-3)


def test_eva_blocks_are_refused():
    from clipdense.models.backbones import OpenCLIPViT
    bb = OpenCLIPViT('clipdense-tiny-eva16', pretrained=None, pyramid=False,
                     out_indices=(-1, ), joint_outputs=('clearclip', ))
    with pytest.raises(NotImplementedError, match='RoPE'):
        bb(torch.randn(1, 3, 64, 64))


def test_paper_configs():
    for method, n in (('clearclip', 7), ('sclip', 7)):
        from mmengine.config import Config
        paths = sorted(glob.glob(osp.join(ROOT, 'configs', method, f'{method}_vit-b16-*.py')))
        assert len(paths) == n
        for p in paths:
            cfg = Config.fromfile(p)
            assert cfg.model.backbone.joint_outputs == (method, )
            assert cfg.model.decode_head.value_key == method
            assert cfg.model.test_cfg.mode == 'slide'
            assert cfg.model.decode_head.num_classes == len(cfg.model.decode_head.vocabulary)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp('world'))['root']


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize('method', ['clearclip', 'sclip'])
def test_tools_test_and_demo_end_to_end(method, world, tmp_path, capsys):
    cfg = osp.join(ROOT, 'configs', method, f'{method}_clip-tiny-vit16_synthetic-128x128.py')
    test_tool = _load('tools/test.py', f'test_tool_{method}')
    test_tool.main([cfg, 'none', '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                    f'test_dataloader.dataset.data_root={world}'])
    out = capsys.readouterr()
    assert 'mIoU' in out.out + out.err
    demo = _load('demo/image_demo.py', f'image_demo_{method}')
    img = sorted(glob.glob(osp.join(world, 'flat/img_dir/val/*.png')))[0]
    code = demo.main([img, cfg, '--out-file', str(tmp_path / 'overlay.png'),
                      '--vocabulary', 'a ball,under the sky'])
    assert code in (0, None)
    overlay = cv2.imread(str(tmp_path / 'overlay.png'))
    assert overlay is not None and overlay.shape[:2] == cv2.imread(img).shape[:2]
