"""VLTSeg: Mask2Former on clipdense CLIP backbones (training, slide
inference, patch-14 pyramids) and the paper's optimiser settings."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.models.decode_heads import Mask2FormerHead
from mmseg.structures import SegDataSample

from clipdense.registry import MODELS
from clipdense.testing import register_tiny_models
from clipdense.testing.runs import ROOT

SYNTH = osp.join(ROOT, 'configs/vltseg/'
                 'vltseg_synth-rn-scratch_1xb4-300_synthetic-flat-128x128.py')
VIT_B = osp.join(ROOT, 'configs/vltseg/'
                 'vltseg_vit-b16-openai_2xb8-5k_gta5-512x512.py')
EVA_L = osp.join(ROOT, 'configs/vltseg/'
                 'vltseg_eva02-l14-merged2b_2xb8-5k_gta5-512x512.py')


def _tiny_synth_model(**overrides):
    cfg = Config.fromfile(SYNTH)
    cfg.model.backbone.pretrained = None
    cfg.model.data_preprocessor.size = (64, 64)
    for k, v in overrides.items():
        cfg.model[k] = v
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _batch(n, h, w, num_classes=13, with_gt=True):
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 255, (3, h, w), generator=g,
                                    dtype=torch.uint8))
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        if with_gt:
            gt = torch.randint(0, num_classes, (1, h // 16, w // 16), generator=g)
            gt = gt.repeat_interleave(16, 1).repeat_interleave(16, 2)
            gt[:, :4] = 255
            s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_loss_and_backward_reach_the_clip_backbone():
    model = _tiny_synth_model()
    model.train()
    data = model.data_preprocessor(_batch(2, 64, 64), training=True)
    losses = model(**data, mode='loss')
    for key in ('decode.loss_cls', 'decode.loss_mask', 'decode.loss_dice',
                'decode.d0.loss_cls'):
        assert key in losses and torch.isfinite(losses[key])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    # (open_clip zero-inits each bottleneck's bn3, so test the stem)
    grad = model.backbone.visual.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_slide_inference_with_padding_metainfo():
    """The case mmseg 1.2.2's head gets wrong (mmseg #3666): a padded test
    batch (pad_shape in the metainfo) with several windows."""
    model = _tiny_synth_model(
        test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(32, 32)))
    model.data_preprocessor.test_cfg = dict(size_divisor=32)
    model.eval()
    data = model.data_preprocessor(_batch(1, 64, 80, with_gt=False), False)
    assert 'pad_shape' in data['data_samples'][0].metainfo  # padded to 96
    with torch.no_grad():
        out = model(**data, mode='predict')
        assert out[0].pred_sem_seg.data.shape == (1, 64, 80)
        assert out[0].seg_logits.data.shape == (13, 64, 80)
        # upstream head: each window's logits come out at the padded size
        head = model.decode_head
        x = model.extract_feat(data['inputs'][..., :64])
        meta = dict(data['data_samples'][0].metainfo,
                    img_shape=torch.Size((64, 64)))
        assert Mask2FormerHead.predict(head, x, [meta], None).shape[-2:] == (64, 96)
        assert head.predict(x, [meta], None).shape[-2:] == (64, 64)


def test_single_window_slide_equals_whole_and_upstream():
    model = _tiny_synth_model()
    model.eval()
    data = model.data_preprocessor(_batch(1, 64, 64, with_gt=False), False)
    with torch.no_grad():
        model.test_cfg = ConfigDict(mode='slide', crop_size=(128, 128),
                                    stride=(96, 96))
        slide = model(**data, mode='predict')[0].seg_logits.data
        model.test_cfg = ConfigDict(mode='whole')
        whole = model(**data, mode='predict')[0].seg_logits.data
        torch.testing.assert_close(slide, whole)
        # outside slide mode the head is mmseg's
        x = model.extract_feat(data['inputs'])
        meta = dict(img_shape=(64, 64), pad_shape=(64, 64), ori_shape=(64, 64))
        torch.testing.assert_close(
            model.decode_head.predict(x, [meta], None),
            Mask2FormerHead.predict(model.decode_head, x, [meta], None))


def test_patch14_pyramid_under_mask2former():
    """A patch-14 ViT pyramid (strides 3.5/7/14/28) trains under the head."""
    register_tiny_models()
    cfg = Config.fromfile(SYNTH)
    cfg.model.backbone = dict(type='OpenCLIPViT', arch='clipdense-tiny-vit14',
                              pretrained=None, norm_cfg=dict(type='BN'))
    cfg.model.decode_head.in_channels = [32, 32, 32, 32]
    cfg.model.data_preprocessor.size = (56, 56)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert model.backbone.strides == [3.5, 7, 14, 28]
    model.train()
    data = model.data_preprocessor(_batch(2, 56, 56), training=True)
    feats = model.extract_feat(data['inputs'])
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    losses = model(**data, mode='loss')
    assert torch.isfinite(sum(v for k, v in losses.items() if 'loss' in k))


def _groups_by_name(model, optim_wrapper):
    by_id = {}
    for g in optim_wrapper.optimizer.param_groups:
        for p in g['params']:
            by_id[id(p)] = g
    return {n: by_id[id(p)] for n, p in model.named_parameters()
            if p.requires_grad}


@pytest.mark.parametrize('path,arch,names', [
    (VIT_B, 'clipdense-tiny-vit16', dict(
        block='backbone.visual.transformer.resblocks.0.attn.in_proj_weight',
        norm='backbone.visual.transformer.resblocks.0.ln_1.weight',
        table='backbone.visual.positional_embedding')),
    (EVA_L, 'clipdense-tiny-eva16', dict(
        block='backbone.visual.trunk.blocks.0.attn.q_proj.weight',
        norm='backbone.visual.trunk.blocks.0.norm1.weight',
        table='backbone.visual.trunk.pos_embed')),
])
def test_paper_optimiser_settings(path, arch, names):
    """Backbone lr x0.1, grad clip 0.01, no decay on norms/tables/queries."""
    register_tiny_models()
    cfg = Config.fromfile(path)
    cfg.model.backbone.update(arch=arch, pretrained=None,
                              out_indices=[0, 1, 2, 3],
                              norm_cfg=dict(type='BN'))
    cfg.model.backbone.pop('drop_path_rate', None)
    cfg.model.decode_head.in_channels = [32, 32, 32, 32]
    model = MODELS.build(cfg.model)
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    assert ow.clip_grad_kwargs['max_norm'] == 0.01
    groups = _groups_by_name(model, ow)
    base_lr, base_wd = 1e-4, 0.05
    assert groups[names['block']]['lr'] == pytest.approx(0.1 * base_lr)
    assert groups[names['block']]['weight_decay'] == pytest.approx(base_wd)
    for key in ('norm', 'table'):
        assert groups[names[key]]['lr'] == pytest.approx(0.1 * base_lr)
        assert groups[names[key]]['weight_decay'] == 0
    assert groups['decode_head.query_embed.weight']['lr'] == pytest.approx(base_lr)
    assert groups['decode_head.query_embed.weight']['weight_decay'] == 0
    assert groups['decode_head.cls_embed.weight']['weight_decay'] == pytest.approx(base_wd)
    # every backbone parameter at lr x0.1, every head parameter at x1
    for n, g in groups.items():
        expected = 0.1 * base_lr if n.startswith('backbone.') else base_lr
        assert g['lr'] == pytest.approx(expected), n
