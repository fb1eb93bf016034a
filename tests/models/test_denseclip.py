"""DenseCLIPSegmentor: forward modes, learning, text cache, pre-model
prompting, vocabulary checks; ContextDecoder and PixelTextIdentityHead."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from clipdense.registry import MODELS
from clipdense.testing import register_tiny_models

register_tiny_models()

VOCAB = ['cat', 'dog', 'sky']


def seg_cfg(arch='clipdense-tiny-rn', **kw):
    if 'vit' in arch:
        backbone = dict(type='OpenCLIPViT', arch=arch, pretrained=None,
                        pyramid=True, norm_cfg=dict(type='BN'))
        index = 2
    else:
        backbone = dict(type='OpenCLIPResNet', arch=arch, pretrained=None,
                        out_indices=(0, 1, 2, 3))
        index = 3
    cfg = dict(
        type='DenseCLIPSegmentor',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0],
                               std=[255, 255, 255], bgr_to_rgb=True,
                               size=(64, 64)),
        backbone=backbone,
        text_encoder=dict(type='OpenCLIPContextTextEncoder', arch=arch,
                          pretrained=None, class_context_length=5),
        context_decoder=dict(type='ContextDecoder', width=16, num_heads=2,
                             num_layers=1, dropout=0.0),
        vocabulary=VOCAB,
        num_contexts=4,
        score_concat_index=index,
        neck=dict(type='FPN', out_channels=16, num_outs=4),
        decode_head=dict(type='FPNHead', in_channels=[16] * 4, in_index=[0, 1, 2, 3],
                         feature_strides=[4, 8, 16, 32], channels=16,
                         dropout_ratio=0.0, norm_cfg=dict(type='BN'),
                         align_corners=False),
        identity_head=dict(type='PixelTextIdentityHead'),
        test_cfg=dict(mode='whole'))
    cfg.update(kw)
    return copy.deepcopy(cfg)


def batch(n=2, size=64, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand(n, 3, size, size, generator=g)
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, k, (1, size, size), generator=g))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            pad_shape=(size, size), padding_size=[0, 0, 0, 0]))
        samples.append(s)
    return imgs, samples


def count_text_runs(model):
    """Count the runs of the text transformer."""
    calls = []
    enc = model.text_encoder
    orig = enc.encode_embeddings

    def wrapped(x, idx):
        calls.append(x.shape[0])
        return orig(x, idx)
    enc.encode_embeddings = wrapped
    return calls


@pytest.mark.parametrize('arch,prompting', [
    ('clipdense-tiny-rn', 'post'), ('clipdense-tiny-rn', 'pre'),
    ('clipdense-tiny-vit16', 'post')])
def test_three_forward_modes(arch, prompting):
    model = MODELS.build(seg_cfg(arch, prompting=prompting))
    model.init_weights()
    imgs, samples = batch()
    model.train()
    losses = model(imgs, samples, mode='loss')
    assert set(losses) >= {'decode.loss_ce', 'aux_identity.loss_ce'}
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.contexts.grad is not None and model.contexts.grad.abs().sum() > 0
    # the text tower is frozen: no gradient reaches it
    assert all(p.grad is None for p in model.text_encoder.tower_parameters())
    model.eval()
    with torch.no_grad():
        logits = model(imgs, mode='tensor')
        assert logits.shape == (2, 3, 16, 16)  # FPNHead output at stride 4
        preds = model(imgs, samples, mode='predict')
    assert len(preds) == 2
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert preds[0].seg_logits.data.shape == (3, 64, 64)
    assert int(preds[0].pred_sem_seg.data.max()) < 3


def test_build_follows_vocabulary():
    model = MODELS.build(seg_cfg(vocabulary=None, classes_from='SyntheticSegDataset'))
    from clipdense.datasets.synthetic import spec
    k = len(spec.CLASSES)
    assert model.vocabulary == tuple(spec.CLASSES)
    assert model.num_classes == model.decode_head.num_classes == k
    assert model.identity_head.num_classes == k
    # the score map is concatenated to C5 (tiny RN: 256 channels)
    assert model.neck.in_channels == [32, 64, 128, 256 + k]
    assert model.gamma.shape == (32, )
    assert torch.allclose(model.gamma, torch.full((32, ), 1e-4))
    assert 'global' in model.backbone.joint_outputs and 'dense' in model.backbone.joint_outputs
    # a dataset config with its own metainfo classes
    model = MODELS.build(seg_cfg(vocabulary=None, classes_from=dict(
        type='SyntheticSegDataset', metainfo=dict(classes=['a', 'b']))))
    assert model.num_classes == 2


@pytest.mark.parametrize('kw,match', [
    (dict(decode_head=dict(seg_cfg()['decode_head'], num_classes=5)),
     'decode_head.num_classes=5 but the vocabulary has 3'),
    (dict(identity_head=dict(type='PixelTextIdentityHead', num_classes=4)),
     'identity_head.num_classes=4 but the vocabulary has 3'),
    (dict(neck=dict(type='FPN', in_channels=[32, 64, 128, 256], out_channels=16,
                    num_outs=4)), r'neck.in_channels=\[32, 64, 128, 256\] but DenseCLIP feeds'),
    (dict(vocabulary=None), 'needs class names'),
    (dict(vocabulary=None, classes_from='NoSuchDataset'), 'not a registered dataset'),
    (dict(vocabulary=['cat', 'Cat']), 'repeats'),
    (dict(vocabulary='cat,dog'), 'not one string'),
    (dict(prompting='middle'), 'prompting must be one of'),
    (dict(prompting='pre', context_decoder=None), 'needs a context_decoder'),
    (dict(score_concat_index=4), 'score_concat_index=4'),
    (dict(tau=0.0), 'tau must be > 0'),
    (dict(text_encoder=dict(type='OpenCLIPContextTextEncoder', arch='clipdense-tiny-rn',
                            pretrained=None, num_contexts=8)), 'model.num_contexts'),
    (dict(text_encoder=dict(type='OpenCLIPContextTextEncoder', arch='clipdense-synth-rn',
                            pretrained=None)), 'joint space'),
])
def test_bad_config_fails_at_build(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MODELS.build(seg_cfg(**kw))


def test_loss_falls_on_tiny_synthetic_world(tmp_path):
    """A few optimisation steps on real images of a tiny synthetic world."""
    from mmengine.dataset import pseudo_collate

    from clipdense.datasets import SyntheticSegDataset
    from clipdense.datasets.synthetic import spec
    from clipdense.testing.runs import make_tiny_world
    world = make_tiny_world(tmp_path / 'world')['root']
    ds = SyntheticSegDataset(
        data_root=world, style='flat', split='train',
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')])
    data = pseudo_collate([ds[i] for i in range(4)])
    model = MODELS.build(seg_cfg(vocabulary=list(spec.CLASSES)))
    model.init_weights()
    model.train()
    data = model.data_preprocessor(data, True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    hist = []
    ctx0 = model.contexts.detach().clone()
    for _ in range(12):
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append((float(loss), float(losses['aux_identity.loss_ce'])))
    total = [h[0] for h in hist]
    assert np.mean(total[-3:]) < 0.8 * np.mean(total[:3]), total
    score = [h[1] for h in hist]
    assert score[-1] < score[0], score  # the pixel-text score map learns too
    assert not torch.equal(model.contexts.detach(), ctx0)  # the contexts learn


def test_text_tower_runs_once_per_vocabulary_at_inference():
    model = MODELS.build(seg_cfg())
    model.eval()
    calls = count_text_runs(model)
    with torch.no_grad():
        outs = []
        for seed in range(3):  # three batches of two images
            imgs, samples = batch(seed=seed)
            outs.append(model(imgs, samples, mode='predict'))
        assert calls == [3]  # once, for the 3 class names
        model.set_vocabulary(['a cat', 'a dog', 'the sky'])
        imgs, samples = batch(seed=0)
        renamed = model(imgs, samples, mode='predict')
        model(imgs, samples, mode='predict')
        assert calls == [3, 3]  # re-encoded once after the change
        assert not torch.equal(renamed[0].seg_logits.data, outs[0][0].seg_logits.data)
        # new weights (e.g. an optimizer step) invalidate the cache
        model.contexts.add_(0.1)
        model(imgs, samples, mode='predict')
        assert calls == [3, 3, 3]
    # training recomputes every step (the contexts learn)
    model.train()
    for _ in range(2):
        model(*batch(), mode='loss')
    assert calls == [3, 3, 3, 3, 3]


def test_set_vocabulary_refuses_another_class_count():
    model = MODELS.build(seg_cfg())
    with pytest.raises(ValueError, match='trained for 3 classes'):
        model.set_vocabulary(['cat', 'dog'])
    with pytest.raises(ValueError, match='repeats'):
        model.set_vocabulary(['cat', 'dog', 'cat'])
    assert model.vocabulary == tuple(VOCAB)


def test_pre_model_prompting_runs_text_tower_per_image():
    model = MODELS.build(seg_cfg(prompting='pre'))
    assert model.gamma is None
    assert model.context_decoder.out_dim == model.text_encoder.token_embed_dim
    model.eval()
    calls = count_text_runs(model)
    with torch.no_grad():
        imgs, samples = batch()
        model(imgs, samples, mode='predict')
        model(imgs, samples, mode='predict')
        # B x K sequences on every forward
        assert calls == [2 * 3, 2 * 3]
        out = model.backbone(imgs)
        t = model._class_embeddings(out[-1]['global'], out[-1]['dense'])
    assert t.shape == (2, 3, 32)
    assert not torch.allclose(t[0], t[1])  # image-conditioned text embeddings
    post = MODELS.build(seg_cfg())
    with torch.no_grad():
        out = post.backbone(imgs)
        t = post._class_embeddings(out[-1]['global'], out[-1]['dense'])
        base = post.text_embeddings()[0]
    # gamma = 1e-4: post-model prompting starts close to the plain text
    assert torch.allclose(t[0], base, atol=1e-2)
    assert not torch.equal(t[0], t[1])


def test_no_context_decoder_is_language_prompting_only():
    model = MODELS.build(seg_cfg(context_decoder=None))
    assert model.gamma is None and model.context_decoder is None
    model.eval()
    with torch.no_grad():
        assert model(batch()[0], mode='tensor').shape == (2, 3, 16, 16)


def test_inference_model_with_vocabulary():
    from clipdense.apis import inference_model, init_model
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
    cfg = Config(dict(model=seg_cfg(), test_pipeline=pipeline,
                      default_scope='clipdense'))
    model = init_model(cfg, device='cpu')
    assert model.dataset_meta['classes'] == tuple(VOCAB)
    calls = count_text_runs(model)
    rng = np.random.RandomState(0)
    imgs = [rng.randint(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    res = inference_model(model, imgs, vocabulary=['kitten', 'puppy', 'blue sky'])
    assert len(res) == 3 and res[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert model.dataset_meta['classes'] == ('kitten', 'puppy', 'blue sky')
    assert calls == [3]  # three images, one text run
    with pytest.raises(ValueError, match='trained for 3 classes'):
        inference_model(model, imgs[0], vocabulary=['a', 'b'])


def test_context_decoder_shapes_and_check():
    from clipdense.models.necks import ContextDecoder
    dec = ContextDecoder(query_dim=8, visual_dim=12, out_dim=6, width=16, num_heads=2,
                         num_layers=2)
    out = dec(torch.randn(2, 5, 8), torch.randn(2, 7, 12))
    assert out.shape == (2, 5, 6)
    assert ContextDecoder(visual_dim=12).query_dim == 12  # DenseCLIP's config style
    with pytest.raises(ValueError, match='query_dim or visual_dim'):
        ContextDecoder()
    with pytest.raises(ValueError, match='expected queries'):
        dec(torch.randn(2, 5, 8), torch.randn(3, 7, 12))
    # every LayerNorm parameter name contains 'norm' (no weight decay key)
    for name, m in dec.named_modules():
        if isinstance(m, torch.nn.LayerNorm):
            assert 'norm' in name, name


def test_identity_head_loss_is_ce_of_the_score_map():
    head = MODELS.build(dict(type='PixelTextIdentityHead', num_classes=3))
    assert head.conv_seg is None and not list(head.parameters())
    logits = torch.randn(2, 3, 4, 4)
    _, samples = batch(size=16)
    loss = head.loss(logits, samples, None)['loss_ce']
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    up = F.interpolate(logits, size=(16, 16), mode='bilinear', align_corners=False)
    assert torch.allclose(loss, 0.4 * F.cross_entropy(up, labels), atol=1e-5)
    with pytest.raises(ValueError, match='must equal num_classes'):
        MODELS.build(dict(type='PixelTextIdentityHead', num_classes=3, in_channels=4))


def test_optimizer_groups_follow_the_paper():
    """lr_mult 0 on the text encoder must not freeze the contexts (they belong
    to the segmentor); the backbone gets 0.1x; LayerNorms no decay."""
    from mmengine.optim import build_optim_wrapper
    model = MODELS.build(seg_cfg())
    from clipdense.testing.runs import ROOT
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/denseclip/denseclip_rn50-openai_8xb4-80k_ade20k-512x512.py'))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    assert groups[id(model.contexts)]['lr'] == pytest.approx(1e-4)
    assert groups[id(model.gamma)]['lr'] == pytest.approx(1e-4)
    conv = model.backbone.visual.conv1.weight
    assert groups[id(conv)]['lr'] == pytest.approx(1e-5)
    norm = model.context_decoder.layers[0].norm1.weight
    assert groups[id(norm)]['weight_decay'] == 0
    assert all(not p.requires_grad for p in model.text_encoder.tower_parameters())
