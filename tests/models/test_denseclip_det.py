"""DenseCLIP RetinaNet / Mask R-CNN (mmdet 3.x): forward modes, empty ground
truth, the auxiliary segmentation loss, build-time checks, shared parts."""
import copy
import re

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from clipdense.models.necks.context_decoder import ContextDecoder
from clipdense.models.text_encoders import OpenCLIPContextTextEncoder
from clipdense.models.utils.pixel_text import (boxes_to_class_masks,
                                               pixel_text_score_map,
                                               visual_context)
from clipdense.testing import register_tiny_models

register_tiny_models()

RN = 'clipdense-tiny-rn'  # C2..C5 = 32/64/128/256 channels, joint space 32
VOCAB = ['cat', 'dog', 'sky']
K = len(VOCAB)
FPN = 16


def common(seg_loss=True):
    return dict(
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0],
                               std=[255, 255, 255], bgr_to_rgb=True,
                               pad_size_divisor=32),
        backbone=dict(type='clipdense.OpenCLIPResNet', arch=RN, pretrained=None,
                      out_indices=(0, 1, 2, 3), joint_outputs=('global', 'dense')),
        text_encoder=dict(type='clipdense.OpenCLIPContextTextEncoder', arch=RN,
                          pretrained=None, class_context_length=5),
        context_decoder=dict(type='clipdense.ContextDecoder', width=16,
                             num_heads=2, num_layers=1, dropout=0.0),
        vocabulary=VOCAB, num_contexts=4, seg_loss=seg_loss)


def retina_cfg(**kw):
    cfg = dict(
        type='clipdense.DenseCLIPRetinaNet',
        neck=dict(type='FPN', in_channels=[32, 64, 128, 256 + K], out_channels=FPN,
                  start_level=1, add_extra_convs='on_input', num_outs=3),
        bbox_head=dict(
            type='RetinaHead', num_classes=K, in_channels=FPN, stacked_convs=1,
            feat_channels=FPN,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                  scales_per_octave=1, ratios=[1.0],
                                  strides=[8, 16, 32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4,
                            target_stds=[1.0] * 4),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                          loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                          min_pos_iou=0, ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
            debug=False),
        test_cfg=dict(nms_pre=50, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=10),
        **common())
    cfg.update(kw)
    return cfg


def mask_rcnn_cfg(**kw):
    import os.path as osp

    import mmdet
    from mmengine.config import Config
    base = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                                    '_base_/models/mask-rcnn_r50_fpn.py')).model.to_dict()
    roi = base['roi_head']
    roi['bbox_roi_extractor']['out_channels'] = FPN
    roi['bbox_head'].update(in_channels=FPN, fc_out_channels=32, num_classes=K)
    roi['mask_roi_extractor']['out_channels'] = FPN
    roi['mask_head'].update(num_convs=1, in_channels=FPN, conv_out_channels=FPN,
                            num_classes=K)
    base['train_cfg']['rpn']['sampler']['num'] = 32
    base['train_cfg']['rpn_proposal'].update(nms_pre=100, max_per_img=50)
    base['train_cfg']['rcnn']['sampler']['num'] = 32
    base['test_cfg']['rpn'].update(nms_pre=50, max_per_img=20)
    base['test_cfg']['rcnn'].update(max_per_img=10, score_thr=0.0)
    cfg = dict(
        type='clipdense.DenseCLIPMaskRCNN',
        neck=dict(type='FPN', in_channels=[32, 64, 128, 256 + K], out_channels=FPN,
                  num_outs=5),
        rpn_head=dict(base['rpn_head'], in_channels=FPN, feat_channels=FPN),
        roi_head=roi, train_cfg=base['train_cfg'], test_cfg=base['test_cfg'],
        **common())
    cfg.update(kw)
    return cfg


CFGS = {'retinanet': retina_cfg, 'mask_rcnn': mask_rcnn_cfg}


def total(value):
    """A loss entry (tensor or per-level list) as one scalar."""
    if isinstance(value, (list, tuple)):
        return sum(v.sum() for v in value)
    return value.sum()


def tensors(out):
    """Every tensor in a nested tuple/list."""
    if torch.is_tensor(out):
        return [out]
    return [t for o in out for t in tensors(o)]


def build(cfg):
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
        det.init_weights()
    return det


def batch(det, num_items, size=(64, 96), with_mask=True):
    """A preprocessed batch: one image per entry of ``num_items``."""
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(len(num_items), [(3, *size)] * len(num_items),
                            num_items=num_items, num_classes=K, with_mask=with_mask)
    return det.data_preprocessor(packed, True)


@pytest.fixture(scope='module')
def dets():
    torch.manual_seed(0)
    return {name: build(fn()) for name, fn in CFGS.items()}


@pytest.mark.parametrize('name', list(CFGS))
def test_three_forward_modes(dets, name):
    det = dets[name]
    det.train()
    data = batch(det, [3, 2])
    losses = det(**data, mode='loss')
    loss = sum(total(v) for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss) and loss > 0
    assert losses['loss_aux_seg'] > 0
    loss.backward()
    # the DenseCLIP parts learn through the detection and auxiliary losses
    assert det.contexts.grad.abs().sum() > 0
    assert det.gamma.grad.abs().sum() > 0
    assert det.context_decoder.out_proj.linear.weight.grad.abs().sum() > 0
    det.zero_grad()

    det.eval()
    with torch.no_grad():
        results = det(**batch(det, [2, 1]), mode='predict')
    assert len(results) == 2
    for r in results:
        inst = r.pred_instances
        assert inst.bboxes.shape[1] == 4 and len(inst.scores) == len(inst.labels) > 0
        assert int(inst.labels.max()) < K
        if name == 'mask_rcnn':
            assert inst.masks.shape[1:] == (64, 96)
    with torch.no_grad():
        out = det(**batch(det, [1, 1]), mode='tensor')
    if name == 'retinanet':
        cls_scores, _ = out
        assert [tuple(c.shape) for c in cls_scores] == \
            [(2, K, 8, 12), (2, K, 4, 6), (2, K, 2, 3)]
    else:
        cls_score, bbox_pred, mask_pred = tensors(out)
        n = cls_score.shape[0]
        assert n > 0 and cls_score.shape[1] == K + 1 and bbox_pred.shape == (n, 4 * K)
        assert mask_pred.shape[1:] == (K, 28, 28)
        assert all(torch.isfinite(t).all() for t in (cls_score, bbox_pred, mask_pred))


@pytest.mark.parametrize('name', list(CFGS))
def test_image_without_ground_truth(dets, name):
    """No boxes: zero box (and mask) losses, zero auxiliary loss, finite
    classification loss, and backward works."""
    det = dets[name]
    det.train()
    losses = det(**batch(det, [0]), mode='loss')
    for key, value in losses.items():
        value = total(value)
        assert torch.isfinite(value), key
        if 'bbox' in key or 'mask' in key or key == 'loss_aux_seg':
            assert value == 0, key
    cls_key = 'loss_cls' if name == 'retinanet' else 'loss_rpn_cls'
    assert total(losses[cls_key]) > 0
    sum(total(v) for k, v in losses.items() if 'loss' in k).backward()
    det.zero_grad()


def test_aux_loss_off_and_on():
    torch.manual_seed(0)
    off = build(retina_cfg(seg_loss=False))
    on = build(retina_cfg(seg_loss=True))
    on.load_state_dict(off.state_dict())
    torch.manual_seed(1)
    data = batch(off, [2, 3])
    off.train(), on.train()
    torch.manual_seed(2)
    l_off = off(**copy.deepcopy(data), mode='loss')
    torch.manual_seed(2)
    l_on = on(**copy.deepcopy(data), mode='loss')
    assert 'loss_aux_seg' not in l_off
    assert l_on['loss_aux_seg'] > 0
    # the detection losses are the same model's either way
    for k in l_off:
        assert torch.allclose(total(l_off[k]), total(l_on[k])), k
    # weight scales it
    on.seg_loss_weight = 0.5
    torch.manual_seed(2)
    half = on(**copy.deepcopy(data), mode='loss')['loss_aux_seg']
    assert torch.allclose(half, 0.5 * l_on['loss_aux_seg'])


def test_aux_loss_value():
    """BCE of sigmoid(upsampled s/tau) vs box masks, over in-box cells."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    det = build(retina_cfg())
    score = torch.randn(1, K, 2, 2)
    ds = DetDataSample()
    ds.gt_instances = InstanceData(bboxes=torch.tensor([[0., 0., 32., 16.],
                                                        [16., 16., 48., 64.]]),
                                   labels=torch.tensor([2, 0]))
    loss = det.aux_seg_loss(score, [ds], (64, 64))
    logits = F.interpolate(score, size=(16, 16), mode='bilinear', align_corners=False)
    target = torch.zeros(1, K, 16, 16)
    inside = torch.zeros(1, 1, 16, 16)
    target[0, 2, 0:4, 0:8] = 1
    inside[0, :, 0:4, 0:8] = 1
    target[0, 0, 4:16, 4:12] = 1
    inside[0, :, 4:16, 4:12] = 1
    bce = F.binary_cross_entropy(torch.sigmoid(logits), target, reduction='none')
    expected = (bce * inside).sum() / (inside.sum() * K)
    assert torch.allclose(loss, expected, atol=1e-6)


def test_score_map_is_concatenated_to_c5(dets):
    """C5 carries s / tau, s the cosine of the context-updated text and
    the dense embeddings; the parts are the segmentation ones."""
    det = dets['retinanet']
    det.eval()
    assert type(det.context_decoder) is ContextDecoder
    assert isinstance(det.text_encoder, OpenCLIPContextTextEncoder)
    assert det.contexts.shape == (1, 4, det.text_encoder.token_embed_dim)
    assert det.text_encoder.contexts is None  # one set of contexts, the detector's
    assert det.context_decoder.query_dim == det.context_decoder.out_dim == 32
    assert torch.allclose(det.gamma, torch.full((32, ), 1e-4))
    x = batch(det, [1])['inputs']
    seen = {}

    def grab(module, args):
        seen.setdefault('c5', args[0][-1].clone())

    hook = det.neck.register_forward_pre_hook(grab)
    with torch.no_grad():
        feats, score = det.extract_feat_and_score(x)
        *stages, joint = det.backbone(x)
        text = det.text_encoder(VOCAB, context=det.contexts)
        text = text + det.gamma * det.context_decoder(
            text, visual_context(joint['global'], joint['dense']))
        expected = pixel_text_score_map(joint['dense'], text) / 0.07
    hook.remove()
    assert score.shape == (1, K, 2, 3)
    assert torch.allclose(score, expected, atol=1e-5)
    assert seen['c5'].shape[1] == 256 + K
    assert torch.allclose(seen['c5'][:, 256:], expected, atol=1e-5)
    assert torch.allclose(seen['c5'][:, :256], stages[-1], atol=1e-6)


def test_text_runs_once_at_inference():
    det = build(retina_cfg())
    det.eval()
    calls = []
    hook = det.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    data = batch(det, [1, 1])
    try:
        with torch.no_grad():
            det(**data, mode='predict')
            det(**data, mode='predict')
            assert len(calls) == 1
            det.contexts.add_(0.1)  # new contexts: recomputed
            det(**data, mode='predict')
            assert len(calls) == 2
        det.train()
        det(**batch(det, [1]), mode='loss')  # training: every forward
        det(**batch(det, [1]), mode='loss')
        assert len(calls) == 4
    finally:
        hook.remove()


@pytest.mark.parametrize('change, message', [
    (lambda c: c['neck'].update(in_channels=[32, 64, 128, 256]), '256 + 3'),
    (lambda c: c['bbox_head'].update(num_classes=4), 'bbox_head.num_classes = 4'),
    (lambda c: c['backbone'].update(joint_outputs=('dense', )), "joint_outputs=('global', 'dense')"),
    (lambda c: c['context_decoder'].update(query_dim=16), 'context_decoder'),
    (lambda c: c.update(vocabulary=None), 'no vocabulary'),
    (lambda c: c['text_encoder'].update(num_contexts=4), 'set model.num_contexts'),
    (lambda c: c.update(num_contexts=80), 'num_contexts must be >= 1'),
])
def test_build_errors_name_the_fix(change, message):
    cfg = retina_cfg()
    change(cfg)
    with pytest.raises(ValueError, match=re.escape(message)):
        build(cfg)


def test_mask_rcnn_num_classes_checked():
    cfg = mask_rcnn_cfg()
    cfg['roi_head']['mask_head']['num_classes'] = 5
    with pytest.raises(ValueError, match='roi_head.mask_head.num_classes = 5'):
        build(cfg)


def test_boxes_to_class_masks():
    target, inside = boxes_to_class_masks(
        [torch.tensor([[1., 2., 9., 3.]]), torch.zeros(0, 4)],
        [torch.tensor([1]), torch.zeros(0, dtype=torch.long)], 2, (4, 4), (4., 4.))
    assert target.shape == (2, 2, 4, 4) and inside.shape == (2, 1, 4, 4)
    # x 1..9 -> cells 0..2 (ceil), y 2..3 -> cell 0 (a box thinner than a cell)
    expected = torch.zeros(4, 4)
    expected[0, 0:3] = 1
    assert torch.equal(target[0, 1], expected) and torch.equal(inside[0, 0], expected)
    assert target[0, 0].sum() == 0 and target[1].sum() == 0 and inside[1].sum() == 0
    with pytest.raises(ValueError, match='labels must be in'):
        boxes_to_class_masks([torch.tensor([[0., 0., 4., 4.]])], [torch.tensor([2])],
                             2, (4, 4), (4., 4.))


def test_pixel_text_helpers():
    dense = torch.randn(2, 8, 3, 5)
    text = torch.randn(4, 8)
    s = pixel_text_score_map(dense, text)
    assert s.shape == (2, 4, 3, 5)
    manual = F.cosine_similarity(dense[:, None], text[None, :, :, None, None], dim=2)
    assert torch.allclose(s, manual, atol=1e-6)
    ctx = visual_context(torch.randn(2, 8), dense)
    assert ctx.shape == (2, 16, 8) and torch.equal(ctx[:, 1:], dense.flatten(2).transpose(1, 2))
    with pytest.raises(ValueError, match='same D'):
        pixel_text_score_map(dense, torch.randn(4, 7))
