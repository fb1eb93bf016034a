"""AffordanceCLIP: forward modes, prompts, frozen towers, learning, errors."""
import copy

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from clipdense.registry import MODELS
from clipdense.testing import register_tiny_models

register_tiny_models()
ARCH = 'clipdense-tiny-rn'  # embed 32, stage channels 32/64/128/256, size 64


def model_cfg(**kw):
    head = dict(type='AffordanceHead', channels=16,
                norm_cfg=dict(type='GN', num_groups=4))
    head.update(kw.pop('head', {}))
    cfg = dict(
        type='AffordanceCLIP',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0],
                               std=[255, 255, 255], seg_pad_val=255,
                               size=(64, 64)),
        backbone=dict(type='OpenCLIPResNet', arch=ARCH, pretrained=None,
                      out_indices=(1, 2, 3), joint_outputs=('global', 'dense', 'value'),
                      freeze='all'),
        text_encoder=dict(type='OpenCLIPTextEncoder', arch=ARCH, pretrained=None),
        decode_head=head,
        prompt_templates=['{}', 'the part to {}'])
    cfg.update(kw)
    return ConfigDict(cfg)


def build(**kw):
    model = MODELS.build(model_cfg(**kw))
    model.init_weights()
    return model


def samples(texts, masks=None, size=64):
    out = []
    for i, t in enumerate(texts):
        ds = SegDataSample(metainfo=dict(text=t, ori_shape=(size, size),
                                         img_shape=(size, size)))
        if masks is not None:
            ds.gt_sem_seg = PixelData(data=torch.as_tensor(masks[i])[None].long())
        out.append(ds)
    return out


def square_masks(n, size=64):
    masks = np.zeros((n, size, size), np.int64)
    for i in range(n):
        o = 8 * i
        masks[i, 8 + o:24 + o, 8:40] = 1
    return masks


def test_head_levels_and_builds_from_backbone():
    model = build()
    assert model.decode_head.in_channels == [64, 128, 256]
    assert model.decode_head.embed_dim == 32
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert all(not p.requires_grad for p in model.text_encoder.parameters())
    assert all(p.requires_grad for p in model.decode_head.parameters())


@pytest.mark.parametrize('fusion', ['film', 'concat', 'none'])
def test_forward_modes(fusion):
    model = build(head=dict(fusion=fusion))
    imgs = torch.rand(2, 3, 64, 64)
    dss = samples(['the red cup', 'knife handle'], square_masks(2))
    model.train()
    losses = model(imgs, dss, mode='loss')
    assert set(losses) == {'loss_bce', 'loss_dice'}
    assert all(torch.isfinite(v) and v.requires_grad for v in losses.values())
    logits = model(imgs, dss, mode='tensor')
    assert logits.shape == (2, 1, 8, 8)  # the finest level, C3 at stride 8
    model.eval()
    dss = samples(['hold', 'cut'], size=64)
    dss[1].set_metainfo(dict(ori_shape=(40, 50)))
    out = model(imgs, dss, mode='predict')
    heat = out[0].pred_heatmap.data
    assert heat.shape == (1, 64, 64) and 0 <= heat.min() and heat.max() <= 1
    assert out[1].pred_heatmap.data.shape == (1, 40, 50)
    assert out[1].seg_logits.data.shape == (1, 40, 50)
    assert out[1].pred_sem_seg.data.dtype == torch.uint8


def test_several_prompts_at_once_match_single_calls():
    model = build().eval()
    imgs = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        both = model.predict_prompts(imgs, ['hold', 'cut', 'drink with'])
        one = model.predict_prompts(imgs, ['cut'])
    assert both.shape == (2, 3, 64, 64)
    torch.testing.assert_close(both[:, 1:2], one, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(both[:, 0], both[:, 1])  # the text conditions the map
    # a list of prompts in a data sample: one map per prompt
    out = model.predict(imgs[:1], samples([['hold', 'cut']]))
    assert out[0].pred_heatmap.data.shape == (2, 64, 64)
    torch.testing.assert_close(out[0].seg_logits.data, both[0, :2], rtol=1e-4, atol=1e-5)


def test_untrained_clip_similarity_baselines():
    model = build(test_cfg=dict(heatmap='clip_dense')).eval()
    imgs = torch.rand(1, 3, 64, 64)
    out = model.predict(imgs, samples(['hold']))
    cos = out[0].pred_heatmap.data
    assert cos.shape == (1, 64, 64) and cos.abs().max() <= 1 + 1e-5
    value = model.predict_prompts(imgs, ['hold'], source='clip_value')
    assert not torch.allclose(value[0, 0], cos[0])
    with pytest.raises(ValueError, match="needs 'value'"):
        MODELS.build(model_cfg(
            backbone=dict(type='OpenCLIPResNet', arch=ARCH, pretrained=None,
                          out_indices=(1, 2, 3), joint_outputs=('global', )),
            test_cfg=dict(heatmap='clip_value')))


def test_training_changes_only_the_head():
    model = build()
    before_towers = {k: v.clone() for k, v in model.state_dict().items()
                     if not k.startswith('decode_head.')}
    before_head = {k: v.clone() for k, v in model.decode_head.state_dict().items()}
    optim = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.1)))
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                        for _ in range(2)],
                data_samples=samples(['the red cup', 'the handle of the mug'],
                                     square_masks(2)))
    model.train()
    for _ in range(2):
        model.train_step(copy.deepcopy(data), optim)
    after = model.state_dict()
    # every tower tensor, BN running statistics included, is unchanged
    assert before_towers
    for k, v in before_towers.items():
        assert torch.equal(v, after[k]), k
    changed = [k for k, v in before_head.items()
               if not torch.equal(v, model.decode_head.state_dict()[k])]
    assert len(changed) == len(before_head)


def test_loss_falls_on_a_fixed_batch():
    model = build()
    optim = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=5e-3)))
    g = torch.Generator().manual_seed(0)
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), generator=g,
                                      dtype=torch.uint8) for _ in range(3)],
                data_samples=samples(['a', 'b', 'c'], square_masks(3)))
    model.train()
    first = model.train_step(copy.deepcopy(data), optim)
    for _ in range(25):
        last = model.train_step(copy.deepcopy(data), optim)
    assert last['loss'] < 0.7 * first['loss']


def test_frozen_feature_cache_is_exact():
    model = build(feature_cache_size=3).eval()
    calls = []
    orig = model.backbone.forward
    model.backbone.forward = lambda x: (calls.append(x.shape[0]), orig(x))[1]
    imgs = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        ref = model.predict_prompts(imgs[:2], ['hold'])
        again = model.predict_prompts(imgs[:2], ['hold'])
        mixed = model.predict_prompts(imgs[1:3], ['hold'])
    assert calls == [2, 1]  # second call: all hits; third: only the new image
    torch.testing.assert_close(again, ref)
    torch.testing.assert_close(mixed[0], ref[1])
    model.predict_prompts(imgs, ['hold'])
    assert len(model._feat_cache) == 3  # bounded
    # loading other weights invalidates the cache
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.mul_(1.0)
    calls.clear()
    model.predict_prompts(imgs[:1], ['hold'])
    assert calls == [1]


def test_sentence_embeddings_are_cached():
    model = build()
    enc = model.text_encoder
    calls = []
    orig = enc.encode_text
    enc.encode_text = lambda tokens, normalize=False: (
        calls.append(tokens.shape[0]), orig(tokens, normalize))[1]
    a = model.encode_sentences(['the cup', 'the knife', 'the cup'])
    assert calls == [2]  # unique sentences only
    b = model.encode_sentences(['the knife', 'the cup'])
    assert calls == [2]  # nothing new to encode
    torch.testing.assert_close(a[1], b[0])
    torch.testing.assert_close(a[0], a[2])
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(3))
    # a comma is part of a referring expression, not a synonym separator
    c = model.encode_sentences(['cup, left'])
    assert c.shape == (1, 32)


def test_bad_input():
    model = build().eval()
    imgs = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match='empty'):
        model.predict_prompts(imgs, [''])
    with pytest.raises(ValueError, match='no prompt'):
        model.predict_prompts(imgs, [])
    with pytest.raises(ValueError, match='empty'):
        model.predict(imgs, samples(['  ']))
    with pytest.raises(KeyError, match="meta_keys"):
        model.predict(imgs, [SegDataSample(metainfo=dict(ori_shape=(64, 64)))])
    with pytest.raises(KeyError, match='LoadReferringMask'):
        model.loss(imgs, samples(['cup']))
    bad = square_masks(1) * 3
    with pytest.raises(ValueError, match='0/1'):
        model.loss(imgs, samples(['cup'], bad))
    with pytest.raises(ValueError, match='in_channels'):
        MODELS.build(model_cfg(head=dict(in_channels=[1, 2, 3])))
    with pytest.raises(ValueError, match="joint_outputs containing 'global'"):
        MODELS.build(model_cfg(backbone=dict(
            type='OpenCLIPResNet', arch=ARCH, pretrained=None, out_indices=(1, 2, 3))))
    with pytest.raises(ValueError, match='not the same CLIP'):
        MODELS.build(model_cfg(text_encoder=dict(
            type='OpenCLIPTextEncoder', arch='clipdense-synth-rn', pretrained=None)))
    with pytest.raises(ValueError, match='fusion'):
        MODELS.build(model_cfg(head=dict(fusion='add')))
    with pytest.raises(ValueError, match='heatmap'):
        MODELS.build(model_cfg(test_cfg=dict(heatmap='gradcam')))


def _demo_config(tmp_path):
    cfg = dict(
        default_scope='clipdense',
        model=model_cfg(),
        test_pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(64, 64), keep_ratio=True),
            dict(type='LoadAffordanceHeatmap'),
            dict(type='PackSegInputs', meta_keys=('img_path', 'ori_shape', 'img_shape',
                                                  'text'))])
    path = tmp_path / 'affordance_tiny.py'
    Config(cfg).dump(str(path))
    return str(path)


def _demo_module():
    import importlib.util

    from clipdense.testing.runs import ROOT
    spec = importlib.util.spec_from_file_location(
        'clipdense_image_demo', f'{ROOT}/demo/image_demo.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_heatmap_demo(tmp_path, capsys):
    import cv2

    from clipdense.visualization.affordance import parse_prompts
    demo = _demo_module()
    img = tmp_path / 'img.png'
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (48, 80, 3),
                                                            dtype=np.uint8))
    out = tmp_path / 'out' / 'heat.png'
    cfg = _demo_config(tmp_path)
    rc = demo.main([str(img), cfg, '--task', 'affordance', '--prompt', 'hold; drink with',
                    '--out-file', str(out), '--out-mask', str(tmp_path / 'h.npy')])
    assert rc == 0, capsys.readouterr().err
    panel = cv2.imread(str(out))
    assert panel.shape == (48, 80 * 3, 3)  # the image and one overlay per prompt
    heats = np.load(tmp_path / 'h.npy')
    assert heats.shape == (2, 48, 80) and heats.min() >= 0 and heats.max() <= 1
    assert "'drink with' max" in capsys.readouterr().out
    # bad prompts: exit status 2 with a message, nothing built
    assert demo.main([str(img), cfg, '--task', 'affordance', '--prompt', ' ; ']) == 2
    assert 'prompt' in capsys.readouterr().err
    assert demo.main([str(img), cfg, '--task', 'affordance']) == 2
    assert '--prompt' in capsys.readouterr().err
    assert parse_prompts('hold, grasp;cut') == ['hold, grasp', 'cut']
    with pytest.raises(ValueError, match='repeats'):
        parse_prompts('hold;Hold')
