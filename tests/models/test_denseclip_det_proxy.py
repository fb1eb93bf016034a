"""The DenseCLIP / CLIP RetinaNet configs on the proxy CLIP ViT
(``configs/denseclip_det/*_clip-synth-vit8_*``, issue #25): built as shipped
from a random-weight checkpoint of the proxy arch written here, one loss
step each; the score map goes to the pyramid level at the patch stride; the
build checks name the fix on a ViT."""
import copy
import os.path as osp
import re

import open_clip
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from clipdense.models.utils.clip_archs import register_clip_archs
from clipdense.testing.runs import ROOT

ARCH = 'clipdense-synth-vit8'
CFG = osp.join(ROOT, 'configs', 'denseclip_det',
               '{}-retinanet_clip-synth-vit8_1xb4-20e_synthetic-coco-128x128.py')
K = 10


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    register_clip_archs()
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('proxy') / 'proxy_random.pt')
    torch.save(open_clip.create_model(ARCH).state_dict(), path)
    return path


def model_cfg(variant, weights):
    cfg = Config.fromfile(CFG.format(variant))
    model = copy.deepcopy(cfg.model)
    model.backbone.pretrained = weights
    if 'text_encoder' in model:
        model.text_encoder.pretrained = weights
    return model


def build(model):
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = MODELS.build(model)
        det.init_weights()
    return det


def grab_neck_inputs(det, seen):
    """Record the neck's inputs (a pre-hook returning None keeps them)."""
    def hook(module, args):
        seen.setdefault('in', [t.detach() for t in args[0]])
    return det.neck.register_forward_pre_hook(hook)


def batch(det, n=2):
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(1)
    packed = demo_mm_inputs(n, [(3, 128, 128)] * n, num_items=[2] * n,
                            num_classes=K, with_mask=False)
    return det.data_preprocessor(packed, True)


@pytest.mark.parametrize('variant', ['clip', 'denseclip'])
def test_shipped_config_loss_step(weights, variant):
    det = build(model_cfg(variant, weights))
    bb = det.backbone
    assert type(bb).__name__ == 'OpenCLIPViT' and bb.patch_size == 8
    # the proxy weights were loaded (not the random init of the build)
    sd = torch.load(weights, map_location='cpu')
    assert torch.equal(bb.visual.conv1.weight, sd['visual.conv1.weight'])
    data = batch(det)
    det.train()
    seen = {}
    hook = grab_neck_inputs(det, seen)
    losses = det(**data, mode='loss')
    hook.remove()
    assert {'loss_cls', 'loss_bbox'} <= set(losses)
    # P3-P7 for the head from the stride-8 level on, as the ResNet config
    assert [t.shape[-1] for t in seen['in']] == [64, 32, 16, 8]
    total = sum(sum(v) if isinstance(v, (list, tuple)) else v for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    trained = [n for n, p in det.named_parameters() if p.grad is not None
               and p.grad.abs().sum() > 0]
    assert 'backbone.visual.conv1.weight' in trained  # through the whole tower
    assert any(n.startswith('bbox_head.') for n in trained)
    if variant == 'clip':
        assert 'loss_aux_seg' not in losses
        assert [t.shape[1] for t in seen['in']] == [96] * 4
        return
    assert 'loss_aux_seg' in losses and losses['loss_aux_seg'] > 0
    assert det.score_concat_index == 2
    assert [t.shape[1] for t in seen['in']] == [96, 96, 96 + K, 96]
    assert det.contexts.grad is not None and det.contexts.grad.abs().sum() > 0
    # the text tower is frozen by the recipe's lr_mult 0, not here: it gets grads
    # only through the contexts; the extra channels are s / tau of the 16x16 grid
    det.eval()
    with torch.no_grad():
        feats, score = det.extract_feat_and_score(data['inputs'])
        *levels, joint = det.backbone(data['inputs'])
    assert score.shape == (2, K, 16, 16)
    assert joint['dense'].shape[-2:] == (16, 16)
    with torch.no_grad():
        seen.clear()
        hook = grab_neck_inputs(det, seen)
        det.extract_feat_and_score(data['inputs'])
        hook.remove()
    assert torch.allclose(seen['in'][2][:, 96:], score, atol=1e-5)
    assert torch.allclose(seen['in'][2][:, :96], levels[2], atol=1e-6)
    # a prediction runs and gives at most max_per_img boxes per image
    with torch.no_grad():
        preds = det(**batch(det, 1), mode='predict')
    assert len(preds[0].pred_instances) <= 20


@pytest.mark.parametrize('change, message', [
    # the score map (stride 8) cannot go to the stride-16 level
    (lambda m: m.update(score_concat_index=-1), 'use score_concat_index=2'),
    (lambda m: m.update(score_concat_index=4), 'score_concat_index=4 but the backbone'),
    (lambda m: m.neck.update(in_channels=[96, 96, 96, 96 + K]),
     'set in_channels[2] to 96 + 10'),
])
def test_vit_build_errors_name_the_fix(weights, change, message):
    model = model_cfg('denseclip', weights)
    model.backbone.pretrained = None
    model.text_encoder.pretrained = None
    change(model)
    with pytest.raises(ValueError, match=re.escape(message)):
        build(model)
