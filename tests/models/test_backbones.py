"""OpenCLIPResNet / OpenCLIPViT on tiny open_clip architectures (CPU, random weights)."""
import copy

import open_clip
import pytest
import torch
import torch.nn.functional as F

from clipdense.models.backbones import OpenCLIPResNet, OpenCLIPViT
from clipdense.models.utils import resize_pos_table
from clipdense.testing import register_tiny_models

register_tiny_models()

RN, VIT16, VIT14, EVA = ('clipdense-tiny-rn', 'clipdense-tiny-vit16',
                         'clipdense-tiny-vit14', 'clipdense-tiny-eva16')


def close(a, b, tol=1e-5):
    """Equal up to ``tol`` relative to the largest magnitude (the tiny EVA's
    random init gives outputs of about 1e-4)."""
    return (a - b).abs().max().item() <= tol * max(b.abs().max().item(), 1e-30)


def reference_model(backbone):
    """An open_clip model whose image tower holds the backbone's weights."""
    model = open_clip.create_model(backbone.arch)
    missing, unexpected = model.load_state_dict(backbone.state_dict(), strict=False)
    assert not unexpected or all(k.startswith('pyramid.') for k in unexpected)
    assert not [k for k in missing if k.startswith('visual.')]
    return model.eval()


# ---------------------------------------------------------------- ResNet
def test_resnet_global_equals_encode_image():
    torch.manual_seed(0)
    bb = OpenCLIPResNet(RN, joint_outputs=('global', 'dense', 'value')).eval()
    ref = reference_model(bb)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = bb(x)
        expected = ref.encode_image(x)
    assert torch.allclose(out[-1]['global'], expected, atol=1e-5)
    # the four stage maps are open_clip's own intermediates
    with torch.no_grad():
        inter = ref.visual.forward_intermediates(x, indices=[1, 2, 3, 4],
                                                 intermediates_only=True)
    for ours, theirs in zip(out[:4], inter['image_intermediates']):
        assert torch.equal(ours, theirs)


def test_resnet_shapes_non_square():
    bb = OpenCLIPResNet(RN, joint_outputs=('global', 'dense', 'value')).eval()
    with torch.no_grad():
        *feats, joint = bb(torch.randn(2, 3, 224, 320))
    assert [tuple(f.shape) for f in feats] == [
        (2, 32, 56, 80), (2, 64, 28, 40), (2, 128, 14, 20), (2, 256, 7, 10)]
    assert bb.out_channels == [32, 64, 128, 256] and bb.strides == [4, 8, 16, 32]
    assert tuple(joint['global'].shape) == (2, 32)
    assert tuple(joint['dense'].shape) == (2, 32, 7, 10)
    assert tuple(joint['value'].shape) == (2, 32, 7, 10)
    assert list(joint) == ['global', 'dense', 'value']


def test_resnet_dense_is_attnpool_with_resized_positions():
    """DenseCLIP: the global token of the dense path is open_clip's attention
    pool with the positional table interpolated to the feature size."""
    torch.manual_seed(0)
    bb = OpenCLIPResNet(RN, out_indices=(3,), joint_outputs=('global', 'dense')).eval()
    x = torch.randn(1, 3, 96, 128)  # C5 3x4, trained grid 2x2
    with torch.no_grad():
        c5, joint = bb(x)
        pool = copy.deepcopy(bb.visual.attnpool)
        pool.positional_embedding.data = resize_pos_table(
            pool.positional_embedding, (2, 2), (3, 4), 1)
        expected = pool(c5)
    assert torch.allclose(joint['global'], expected, atol=1e-5)
    # each dense position is the attention output with that position as query
    assert not torch.allclose(joint['dense'][0, :, 0, 0], joint['dense'][0, :, 2, 3])


def test_resnet_value_path_ignores_positions_and_other_pixels():
    """MaskCLIP: value features are a per-position linear map of C5."""
    bb = OpenCLIPResNet(RN, out_indices=(3,), joint_outputs=('value',)).eval()
    with torch.no_grad():
        c5, joint = bb(torch.randn(1, 3, 64, 96))
        ap = bb.visual.attnpool
        one = ap.c_proj(ap.v_proj(c5[0, :, 1, 2]))
    assert torch.allclose(joint['value'][0, :, 1, 2], one, atol=1e-5)


def test_resnet_keys_and_vv_outputs():
    """'keys' (MaskCLIP key smoothing on ResNets: k_proj per position) and
    'vv' (AnoVL's V-V attention over the attention pool, with positions)."""
    from clipdense.models.utils.anomaly_features import attnpool_vv
    torch.manual_seed(0)
    bb = OpenCLIPResNet(RN, out_indices=(3,), joint_outputs=('keys', 'vv')).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        c5, joint = bb(x)
        ap = bb.visual.attnpool
        key = ap.k_proj(c5[1, :, 1, 2])
        vv = attnpool_vv(ap, c5, bb.pos_table(*c5.shape[-2:]))
    assert list(joint) == ['keys', 'vv']
    assert tuple(joint['keys'].shape) == (2, c5.shape[1], 2, 3)
    assert torch.allclose(joint['keys'][1, :, 1, 2], key, atol=1e-5)
    assert isinstance(joint['vv'], tuple) and len(joint['vv']) == 1
    assert tuple(joint['vv'][0].shape) == (2, bb.embed_dim, 2, 3)
    assert torch.allclose(joint['vv'][0], vv, atol=1e-5)


def test_maskclip_key_smoothing_with_a_resnet():
    """Key smoothing from a config on a ResNet (keys from the backbone)."""
    from clipdense.models.decode_heads import MaskCLIPHead
    torch.manual_seed(0)
    bb = OpenCLIPResNet(RN, out_indices=(3,), joint_outputs=('value', 'keys')).eval()
    head = MaskCLIPHead(text_encoder=dict(type='OpenCLIPTextEncoder', arch=RN),
                        vocabulary=['a', 'b', 'c'], num_classes=3,
                        ks_thresh=1.0).eval()
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 64, 96))
        smoothed = head(feats)
        head.ks_thresh = 0.0
        plain = head(feats)
    assert smoothed.shape == plain.shape == (1, 3, 2, 3)
    assert not torch.allclose(smoothed, plain)


def test_resnet_pos_table_cached_per_size():
    bb = OpenCLIPResNet(RN, joint_outputs=('dense',)).eval()
    cache = bb._size_cache
    with torch.no_grad():
        bb(torch.randn(1, 3, 96, 160))
        bb(torch.randn(1, 3, 96, 160))
        assert cache.num_computed == 1
        bb(torch.randn(1, 3, 160, 96))
        assert cache.num_computed == 2
        bb(torch.randn(1, 3, 64, 64))  # trained size: the table itself
        assert cache.num_computed == 2
    # while the table is trained it is resized on every forward and gets gradients
    bb.train()
    for _ in range(2):
        bb(torch.randn(1, 3, 96, 160))[-1]['dense'].sum().backward()
    assert cache.num_computed == 4
    assert bb.visual.attnpool.positional_embedding.grad is not None


def test_resnet_freeze_all_keeps_bn_stats():
    bb = OpenCLIPResNet(RN, freeze='all')
    assert not any(p.requires_grad for p in bb.parameters())
    bb.train()
    bn = bb.visual.bn1
    assert not bn.training
    before = bn.running_mean.clone()
    bb(torch.randn(2, 3, 64, 64))
    assert torch.equal(bn.running_mean, before)


def test_resnet_freeze_all_but_norms():
    bb = OpenCLIPResNet(RN, freeze='all_but_norms', joint_outputs=('dense',))
    trainable = {n for n, p in bb.named_parameters() if p.requires_grad}
    assert 'visual.attnpool.positional_embedding' in trainable
    assert 'visual.bn1.weight' in trainable
    assert 'visual.conv1.weight' not in trainable
    assert all('bn' in n or 'downsample.1' in n or 'positional' in n for n in trainable)


def test_resnet_too_small_and_wrong_tower():
    bb = OpenCLIPResNet(RN)
    with pytest.raises(ValueError, match='smaller than'):
        bb(torch.randn(1, 3, 16, 64))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        bb(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match='not a CLIP ResNet'):
        OpenCLIPResNet(VIT16)
    with pytest.raises(ValueError, match='joint_outputs'):
        OpenCLIPResNet(RN, joint_outputs=('queries',))


def test_unknown_arch_lists_close_names():
    with pytest.raises(ValueError, match='ViT-B-16') as e:
        OpenCLIPViT('ViT-B-61')
    assert 'unknown open_clip architecture' in str(e.value)
    with pytest.raises(ValueError, match='RN50'):
        OpenCLIPResNet('RN05')


# ---------------------------------------------------------------- ViT / EVA
@pytest.mark.parametrize('arch,size', [(VIT16, 64), (VIT14, 56), (EVA, 64)])
def test_vit_global_equals_encode_image(arch, size):
    torch.manual_seed(0)
    bb = OpenCLIPViT(arch, joint_outputs=('global',)).eval()
    ref = reference_model(bb)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        glob = bb(x)[-1]['global']
        expected = ref.encode_image(x)
    assert close(glob, expected) and torch.allclose(glob, expected, atol=1e-5)


@pytest.mark.parametrize('arch,size', [(VIT16, 64), (EVA, 64)])
def test_vit_taps_equal_open_clip_intermediates(arch, size):
    bb = OpenCLIPViT(arch, pyramid=False, out_indices=(1, 3)).eval()
    ref = reference_model(bb)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        taps = bb(x)
        inter = ref.visual.forward_intermediates(x, indices=[1, 3],
                                                 intermediates_only=True)
    for ours, theirs in zip(taps, inter['image_intermediates']):
        assert close(ours, theirs)


@pytest.mark.parametrize('arch', [VIT16, EVA])
def test_vit_shapes_non_square(arch):
    bb = OpenCLIPViT(arch, joint_outputs=('global', 'dense', 'value', 'keys', 'vv'),
                     vv_indices=(2, 3)).eval()
    with torch.no_grad():
        *feats, joint = bb(torch.randn(2, 3, 224, 320))
    assert [tuple(f.shape) for f in feats] == [
        (2, 32, 56, 80), (2, 32, 28, 40), (2, 32, 14, 20), (2, 32, 7, 10)]
    assert bb.strides == [4, 8, 16, 32]
    assert tuple(joint['global'].shape) == (2, 32)
    for k in ('dense', 'value', 'keys'):
        assert tuple(joint[k].shape) == (2, 32, 14, 20), k
    assert len(joint['vv']) == 4
    assert all(tuple(v.shape) == (2, 32, 14, 20) for v in joint['vv'])


def test_vit_patch14_padding_and_error():
    bb = OpenCLIPViT(VIT14, joint_outputs=('dense',)).eval()
    with torch.no_grad():
        *feats, joint = bb(torch.randn(1, 3, 224, 320))  # 320 = 22.9 patches
    assert tuple(joint['dense'].shape) == (1, 32, 16, 23)
    assert tuple(feats[2].shape) == (1, 32, 16, 23)
    assert tuple(feats[0].shape) == (1, 32, 64, 92)
    assert bb.strides == [3.5, 7, 14, 28]
    strict = OpenCLIPViT(VIT14, patch_pad='error')
    with pytest.raises(ValueError, match='not a multiple of the patch size 14'):
        strict(torch.randn(1, 3, 224, 320))
    strict(torch.randn(1, 3, 224, 322))  # multiples work
    with pytest.raises(ValueError, match='smaller than one patch'):
        bb(torch.randn(1, 3, 10, 320))


def test_vit_padding_is_zero_corner_padding():
    bb = OpenCLIPViT(VIT14, pyramid=False).eval()
    x = torch.randn(1, 3, 50, 60)
    with torch.no_grad():
        a = bb(x)
        b = bb(F.pad(x, (0, 10, 0, 6)))
    assert all(torch.allclose(u, v, atol=1e-6) for u, v in zip(a, b))


def _make_attention_identity(bb):
    """Scale the last block's q/k so that every token attends to itself."""
    blk = bb.blocks[-1]
    with torch.no_grad():
        if bb.kind == 'eva':
            a = blk.attn
            eye = torch.eye(bb.width) * 40
            a.q_proj.weight.copy_(eye)
            a.k_proj.weight.copy_(eye)
            a.q_proj.bias.zero_()
        else:
            w = blk.attn.in_proj_weight
            c = bb.width
            w[:c].copy_(torch.eye(c) * 40)
            w[c:2 * c].copy_(torch.eye(c) * 40)
            blk.attn.in_proj_bias[:2 * c].zero_()


@pytest.mark.parametrize('arch', [VIT16, EVA])
def test_vit_value_path_is_identity_attention(arch):
    """MaskCLIP: the value path equals the normal output of a last block
    whose attention has become the identity."""
    torch.manual_seed(0)
    bb = OpenCLIPViT(arch, joint_outputs=('dense', 'value')).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        joint = bb(x)[-1]
        assert not close(joint['dense'], joint['value'], 1e-2)
        _make_attention_identity(bb)
        joint = bb(x)[-1]
    assert close(joint['dense'], joint['value'], 1e-4)


def test_vit_vv_path_matches_mha_with_v_as_q_and_k():
    """V-V attention (CLIP Surgery / AnoVL) = multi-head attention whose
    query and key projections are replaced by the value projection; the
    dual path adds it to the block input, without FFN."""
    torch.manual_seed(0)
    bb = OpenCLIPViT(VIT16, pyramid=False, out_indices=(2, 3),
                     joint_outputs=('vv',), vv_indices=(3,)).eval()
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        joint = bb(x)[-1]
        # input tokens of the last block, from the tower's own modules
        seq = bb._embed(x)[0]
        for i in range(3):
            seq = bb.blocks[i](seq)
        blk = bb.blocks[3]
        c = bb.width
        wv, bv = blk.attn.in_proj_weight[2 * c:], blk.attn.in_proj_bias[2 * c:]
        y = blk.ln_1(seq).transpose(0, 1)
        attn, _ = F.multi_head_attention_forward(
            y, y, y, c, blk.attn.num_heads,
            torch.cat([wv, wv, wv]), torch.cat([bv, bv, bv]), None, None, False, 0.,
            blk.attn.out_proj.weight, blk.attn.out_proj.bias, need_weights=False)
        vv = seq + attn.transpose(0, 1)
        expected = bb.project_tokens(vv)[:, 1:].transpose(1, 2).reshape(1, -1, 4, 5)
        # before the dual path starts, the V-V entry is the original path
        before = bb.project_tokens(seq)[:, 1:].transpose(1, 2).reshape(1, -1, 4, 5)
    assert torch.allclose(joint['vv'][1], expected, atol=1e-5)
    assert torch.allclose(joint['vv'][0], before, atol=1e-5)


def test_vit_pos_cache_and_no_duplicate_keys():
    bb = OpenCLIPViT(VIT16).eval()
    keys = list(bb.state_dict())
    assert all(k.startswith(('visual.', 'pyramid.')) for k in keys)
    assert not any(k.startswith('blocks.') for k in keys)
    with torch.no_grad():
        for _ in range(3):
            bb(torch.randn(1, 3, 96, 160))
    assert bb._size_cache.num_computed == 1


def test_eva_rope_cached_per_size():
    bb = OpenCLIPViT(EVA).eval()
    with torch.no_grad():
        bb(torch.randn(1, 3, 96, 128))
        n = bb._size_cache.num_computed
        bb(torch.randn(1, 3, 96, 128))
    assert n == 2  # positional table + rotary table
    assert bb._size_cache.num_computed == n


def test_vit_freeze_modes_and_pyramid_norm():
    bb = OpenCLIPViT(VIT16, freeze='all')
    assert not any(p.requires_grad for p in bb.visual.parameters())
    assert all(p.requires_grad for p in bb.pyramid.parameters())
    assert type(bb.pyramid.fpn1[1]).__name__ == 'BatchNorm2d'  # never SyncBN by default
    bb = OpenCLIPViT(VIT16, freeze='all_but_norms', norm_cfg=dict(type='LN'))
    trainable = {n for n, p in bb.visual.named_parameters() if p.requires_grad}
    assert 'positional_embedding' in trainable and 'ln_pre.weight' in trainable
    assert 'transformer.resblocks.0.ln_1.bias' in trainable
    assert 'conv1.weight' not in trainable and 'proj' not in trainable
    with pytest.raises(ValueError, match='freeze'):
        OpenCLIPViT(VIT16, freeze='some')


def test_freeze_works_with_paramwise_lr_mult():
    """Frozen tower parameters never change; the trainable ones (norms,
    positional table, pyramid) get the lr multipliers of ``custom_keys``."""
    from mmengine.optim import build_optim_wrapper

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = OpenCLIPViT(VIT16, freeze='all_but_norms')

    net = Net()
    wrapper = build_optim_wrapper(net, dict(
        optimizer=dict(type='SGD', lr=1e-2, momentum=0.),
        paramwise_cfg=dict(custom_keys={'backbone.visual': dict(lr_mult=0.1)})))
    lr_of = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    bb = net.backbone
    assert lr_of[id(bb.visual.ln_pre.weight)] == pytest.approx(1e-3)
    assert lr_of[id(bb.visual.positional_embedding)] == pytest.approx(1e-3)
    assert lr_of[id(bb.pyramid.fpn2.weight)] == pytest.approx(1e-2)
    assert id(bb.visual.conv1.weight) not in lr_of  # frozen: not optimised
    frozen = bb.visual.conv1.weight.clone()
    norm = bb.visual.transformer.resblocks[0].ln_1.weight.clone()
    net.train()
    loss = sum((f ** 2).mean() for f in bb(torch.randn(2, 3, 64, 64)))
    wrapper.update_params(loss)
    assert torch.equal(bb.visual.conv1.weight, frozen)
    assert not torch.equal(bb.visual.transformer.resblocks[0].ln_1.weight, norm)


def test_vit_bad_arguments():
    with pytest.raises(ValueError, match='OpenCLIPResNet'):
        OpenCLIPViT(RN)
    with pytest.raises(ValueError, match='4 out_indices'):
        OpenCLIPViT(VIT16, out_indices=(1, 3))
    with pytest.raises(ValueError, match='out of range'):
        OpenCLIPViT(VIT16, out_indices=(0, 1, 2, 9))
    with pytest.raises(ValueError, match="'vv' is not in joint_outputs"):
        OpenCLIPViT(VIT16, vv_indices=(1,))
    with pytest.raises(ValueError, match='needs pos_embed_size'):
        OpenCLIPViT(VIT16, pos_embed_mode='bilinear-once-trainable')
    with pytest.raises(ValueError, match='pos_embed_mode must be one of'):
        OpenCLIPViT(VIT16, pos_embed_mode='bilinear')
    with pytest.raises(ValueError, match='only used with'):
        OpenCLIPViT(VIT16, pos_embed_size=64)
    with pytest.raises(ValueError, match="use 'bilinear-once-trainable'"):
        OpenCLIPViT(VIT16, pos_embed_mode='bilinear-once-crop', pos_embed_size=64)
    with pytest.raises(ValueError, match='branch_norm'):
        OpenCLIPViT(VIT16, pyramid_norm='layer')
    with pytest.raises(NotImplementedError, match='open_clip ViTs only'):
        OpenCLIPViT(EVA, class_embed_twice=True)
    eva = OpenCLIPViT(EVA, drop_path_rate=0.2)
    assert eva.blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)


# ---------------------------------------------------------------- mm builds
def test_build_in_mmseg_encoder_decoder():
    from mmengine.registry import DefaultScope

    from clipdense.registry import MODELS
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 96)),
        backbone=dict(type='OpenCLIPViT', arch=VIT16, freeze='all'),
        neck=dict(type='FPN', in_channels=[32] * 4, out_channels=16, num_outs=4),
        decode_head=dict(type='FPNHead', in_channels=[16] * 4, in_index=[0, 1, 2, 3],
                         feature_strides=[4, 8, 16, 32], channels=16, num_classes=3,
                         norm_cfg=dict(type='BN', requires_grad=True),
                         loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))
    with DefaultScope.overwrite_default_scope('clipdense'):
        seg = MODELS.build(cfg)
        seg.init_weights()
        out = seg(torch.randn(1, 3, 64, 96), mode='tensor')
    assert type(seg.backbone).__name__ == 'OpenCLIPViT'
    assert tuple(out.shape) == (1, 3, 16, 24)


def test_build_in_mmdet_retinanet():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.registry import DefaultScope

    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = dict(
        type='RetinaNet',
        data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
        backbone=dict(type='clipdense.OpenCLIPResNet', arch=RN, out_indices=(1, 2, 3),
                      norm_eval=True),
        neck=dict(type='FPN', in_channels=[64, 128, 256], out_channels=16,
                  start_level=0, add_extra_convs='on_input', num_outs=3),
        bbox_head=dict(
            type='RetinaHead', num_classes=2, in_channels=16, stacked_convs=1,
            feat_channels=16,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                  scales_per_octave=1, ratios=[1.0],
                                  strides=[8, 16, 32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4,
                            target_stds=[1.0] * 4),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                          loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=None,
        test_cfg=dict(nms_pre=10, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=5))
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = MMDET_MODELS.build(cfg)
        det.init_weights()
        cls_scores, _ = det(torch.randn(1, 3, 64, 96), mode='tensor')
    assert type(det.backbone).__name__ == 'OpenCLIPResNet'
    assert [tuple(c.shape[-2:]) for c in cls_scores] == [(8, 12), (4, 6), (2, 3)]


def test_unused_parameters_are_frozen():
    """Parameters no configured output uses get no gradient and are frozen
    (DDP without find_unused_parameters)."""
    bb = OpenCLIPViT(VIT16, pyramid=False, out_indices=(0, 1))
    trainable = {n for n, p in bb.named_parameters() if p.requires_grad}
    assert 'visual.transformer.resblocks.1.ln_1.weight' in trainable
    assert not any(n.startswith(('visual.transformer.resblocks.2.', 'visual.ln_post'))
                   or n == 'visual.proj' for n in trainable)
    sum(f.sum() for f in bb(torch.randn(1, 3, 64, 64))).backward()
    assert all(p.grad is not None for n, p in bb.named_parameters() if p.requires_grad)
    rn = OpenCLIPResNet(RN, out_indices=(0, 1, 2))
    assert not any(p.requires_grad for p in rn.visual.attnpool.parameters())
    assert not any(p.requires_grad for p in rn.visual.layer4.parameters())
    rn = OpenCLIPResNet(RN, joint_outputs=('value',))
    assert all(p.requires_grad for p in rn.visual.attnpool.parameters())


def test_vit_fused_attention_equals_multihead_attention(monkeypatch):
    """Blocks run through scaled_dot_product_attention by default (faster);
    outputs and gradients equal nn.MultiheadAttention's."""
    torch.manual_seed(0)
    fused = OpenCLIPViT(VIT16, pyramid=False, out_indices=(1, 3),
                        joint_outputs=('global', 'value'))
    plain = copy.deepcopy(fused)
    plain.fused_attention = False
    assert fused.fused_attention
    x = torch.randn(2, 3, 64, 48)
    calls = []
    orig = torch.nn.MultiheadAttention.forward
    monkeypatch.setattr(torch.nn.MultiheadAttention, 'forward',
                        lambda self, *a, **k: calls.append(1) or orig(self, *a, **k))
    for mode in ('eval', 'train'):
        getattr(fused, mode)()
        getattr(plain, mode)()
        calls.clear()
        out_f = fused(x)
        assert not calls  # no MultiheadAttention in the fused tower
        out_p = plain(x)
        assert calls
        for a, b in zip(out_f[:-1], out_p[:-1]):
            assert close(a, b)
        for key in ('global', 'value'):
            assert close(out_f[-1][key], out_p[-1][key])
    loss_f = out_f[-1]['global'].square().sum()
    loss_p = out_p[-1]['global'].square().sum()
    loss_f.backward()
    loss_p.backward()
    gf = fused.visual.transformer.resblocks[0].attn.in_proj_weight.grad
    gp = plain.visual.transformer.resblocks[0].attn.in_proj_weight.grad
    assert close(gf, gp, 1e-4)
    # bf16 on the CPU: the block's own attention (faster there than the
    # fused kernel)
    fused.eval()
    calls.clear()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        fused(x)
    assert calls


def test_vit_drop_path_open_clip():
    """DenseCLIP's drop path on open_clip blocks: no new parameters, off in
    eval, one draw per token position (shared by the batch) in training."""
    torch.manual_seed(0)
    plain = OpenCLIPViT(VIT16, out_indices=(0, 1, 2, 3), pyramid=False)
    drop = OpenCLIPViT(VIT16, out_indices=(0, 1, 2, 3), pyramid=False,
                       drop_path_rate=0.9)
    assert plain.state_dict().keys() == drop.state_dict().keys()
    drop.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    plain.eval()
    drop.eval()
    with torch.no_grad():
        for a, b in zip(plain(x), drop(x)):
            torch.testing.assert_close(a, b)
    drop.train()
    with torch.no_grad():
        a, b = drop(x)[-1], drop(x)[-1]
    assert not torch.allclose(a, b)
    # the same draw for both images: duplicate them and compare
    with torch.no_grad():
        out = drop(torch.cat([x[:1], x[:1]]))[-1]
    torch.testing.assert_close(out[0], out[1])


def test_pos_embed_modes_resnet():
    """'bilinear-once-trainable': the table becomes a trainable parameter of
    the training grid, resized bilinearly per forward; 'bilinear-once-crop':
    its top-left corner, and a clear error past its size."""
    net = OpenCLIPResNet(RN, joint_outputs=('dense', ), pos_embed_mode='bilinear-once-trainable',
                         pos_embed_size=(64, 96))
    table = net.visual.attnpool.positional_embedding
    assert isinstance(table, torch.nn.Parameter) and table.shape[0] == 1 + 2 * 3
    assert net.pos_grid == (2, 3)
    assert net.pos_table(2, 3) is table
    crop = OpenCLIPResNet(RN, joint_outputs=('dense', ), pos_embed_mode='bilinear-once-crop',
                          pos_embed_size=128)
    full = crop.visual.attnpool.positional_embedding
    part = crop.pos_table(2, 3)
    grid = full[1:].reshape(4, 4, -1)[:2, :3].reshape(6, -1)
    torch.testing.assert_close(part, torch.cat([full[:1], grid]))
    with pytest.raises(ValueError, match='larger than the positional table'):
        crop.pos_table(5, 2)
