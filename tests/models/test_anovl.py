"""AnoVL / WinCLIP detectors, head, prompts and feature helpers on tiny
random CLIP towers."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmseg.structures import SegDataSample

from clipdense.models.utils.anomaly_features import (anovl_views, attnpool_vv,
                                                     harmonic_aggregation,
                                                     make_windows)
from clipdense.models.utils.anomaly_prompts import state_prompts
from clipdense.registry import MODELS
from clipdense.testing import register_tiny_models

register_tiny_models()
RN, VIT = 'clipdense-tiny-rn', 'clipdense-tiny-vit16'
SIZE = {RN: 128, VIT: 64}  # both give a 4x4 token grid


def preproc():
    return dict(type='SegDataPreProcessor', mean=[122.7, 116.7, 104.1],
                std=[68.5, 66.6, 70.3], bgr_to_rgb=True)


def backbone_cfg(arch, path='vv'):
    if arch == RN:
        joint = ('global', ) if path == 'vv' else ('global', path)
        return dict(type='OpenCLIPResNet', arch=arch, pretrained=None,
                    out_indices=(3, ), joint_outputs=joint, freeze='all')
    return dict(type='OpenCLIPViT', arch=arch, pretrained=None, pyramid=False,
                out_indices=(-1, ), joint_outputs=('global', path), freeze='all')


def anovl_cfg(arch=RN, mode='tfa', **kw):
    """mode: 'baseline' / 'tfa' / 'tta' (the three ablation configs)."""
    style, smooth, tta, path, views = 'anovl', 3, None, 'vv', 'anovl'
    if mode == 'baseline':
        style, smooth, path, views = 'clip', 1, 'dense', 'single'
    if mode == 'tta':
        tta = dict(steps=5, lr=1e-3, noise_std=0.055, hard_weight=0.5)
    cfg = dict(type='AnoVLDetector', data_preprocessor=preproc(),
               backbone=backbone_cfg(arch, path),
               head=dict(type='AnoVLHead',
                         text_encoder=dict(type='AnomalyPromptEncoder', arch=arch,
                                           pretrained=None, style=style),
                         smooth_kernel=smooth, tta=tta),
               feature_path=path, image_views=views)
    cfg.update(kw)
    return ConfigDict(cfg)


def winclip_cfg(arch=RN):
    return ConfigDict(type='WinCLIPDetector', data_preprocessor=preproc(),
                      backbone=backbone_cfg(arch, 'vv')
                      if arch == RN else dict(backbone_cfg(arch), joint_outputs=('global', )),
                      text_encoder=dict(type='AnomalyPromptEncoder', arch=arch,
                                        pretrained=None, style='winclip'))


def batch(arch, n=2, names=('bottle', )):
    torch.manual_seed(0)
    s = SIZE[arch]
    inputs = [torch.randint(0, 255, (3, s, s), dtype=torch.uint8) for _ in range(n)]
    samples = [SegDataSample(metainfo=dict(cls_name=names[i % len(names)],
                                           img_shape=(s, s), anomaly=i % 2))
               for i in range(n)]
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('arch', [RN, VIT])
@pytest.mark.parametrize('mode', ['baseline', 'tfa', 'tta'])
def test_anovl_three_modes(arch, mode):
    model = MODELS.build(anovl_cfg(arch, mode)).eval()
    data = model.data_preprocessor(batch(arch), False)
    s = SIZE[arch]
    with torch.no_grad():
        maps = model(data['inputs'], data['data_samples'], mode='tensor')
        assert maps.shape == (2, 1, s, s)
        out = model(data['inputs'], data['data_samples'], mode='predict')
    for ds in out:
        amap = ds.pred_anomaly_map.data
        assert amap.shape == (1, s, s) and torch.isfinite(amap).all()
        assert 0 <= amap.min() and amap.max() <= 1
        assert 0 <= float(ds.pred_score) <= 1
    with pytest.raises(RuntimeError, match='training-free'):
        model(data['inputs'], data['data_samples'], mode='loss')
    # the tower never receives gradients
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_tta_changes_maps_and_resets_per_image():
    torch.manual_seed(0)
    tfa = MODELS.build(anovl_cfg(RN, 'tfa')).eval()
    tta = MODELS.build(anovl_cfg(RN, 'tta')).eval()
    tta.load_state_dict(tfa.state_dict(), strict=False)
    data = tfa.data_preprocessor(batch(RN, n=3, names=('bottle', )), False)
    head = tta.head
    seen = []
    orig = head.adapt

    def spy(tokens, text, cls_name=None):
        out = orig(tokens, text, cls_name)
        seen.append(copy.deepcopy(head.adapter.state_dict()))
        return out

    starts = []
    orig_reset = head.reset_adapter

    def reset_spy(generator=None):
        orig_reset(generator)
        starts.append(copy.deepcopy(head.adapter.state_dict()))

    head.adapt = spy
    head.reset_adapter = reset_spy
    with torch.no_grad():
        m_tfa = tfa(data['inputs'], data['data_samples'], mode='tensor')
        m_tta = tta(data['inputs'], data['data_samples'], mode='tensor')
    assert len(starts) == 3 and len(seen) == 3
    for s in starts[1:]:  # identical weights before every image
        for k in s:
            assert torch.equal(s[k], starts[0][k])
    # ...and the adapter did train (weights after adaptation differ from the start)
    assert not torch.equal(seen[0]['fc.weight'], starts[0]['fc.weight'])
    assert not torch.allclose(m_tfa, m_tta)
    # the result for an image does not depend on the images before it
    with torch.no_grad():
        alone = tta(data['inputs'][2:], data['data_samples'][2:], mode='tensor')
    torch.testing.assert_close(alone[0], m_tta[2], atol=1e-5, rtol=1e-5)


def test_tta_authors_scopes_carry_state_between_images():
    """The authors' TTA (issue 21): one AdamW per class whose moments carry
    over, reset weights drawn from one running stream (different per image),
    the adapter fed raw (not normalised) tokens."""
    torch.manual_seed(0)
    cfg = anovl_cfg(RN, 'tta')
    cfg['head']['tta'].update(normalize_tokens=False, optimizer_scope='class',
                              rng_scope='run')
    tta = MODELS.build(cfg).eval()
    data = tta.data_preprocessor(batch(RN, n=3, names=('bottle', )), False)
    head = tta.head
    starts, norms = [], []
    orig_reset = head.reset_adapter

    def reset_spy(generator=None):
        orig_reset(generator)
        starts.append(copy.deepcopy(head.adapter.state_dict()))

    head.reset_adapter = reset_spy
    orig_forward = head.adapter.forward

    def fwd_spy(x, bank=None):
        norms.append(x.norm(dim=-1).detach())
        return orig_forward(x, bank)

    head.adapter.forward = fwd_spy
    with torch.no_grad():
        tta(data['inputs'], data['data_samples'], mode='tensor')
    assert len(starts) == 3
    assert not torch.equal(starts[0]['fc.weight'], starts[1]['fc.weight'])
    opt = head._optimizers['bottle']
    steps = [int(st['step']) for st in opt.state.values()]
    assert steps and all(n == 3 * cfg['head']['tta'].get('steps', 5) for n in steps)
    assert len(head._optimizers) == 1
    # raw tokens: not unit length
    assert not torch.allclose(norms[0], torch.ones_like(norms[0]), atol=1e-3)
    # a new run starts from the same stream again
    head.reset_tta_state()
    with torch.no_grad():
        tta(data['inputs'][:1], data['data_samples'][:1], mode='tensor')
    torch.testing.assert_close(starts[-1]['fc.weight'], starts[0]['fc.weight'])


def test_visa_tiles():
    """image_views='tiles' (AnoVL's vis_test.py): two square tiles at the
    ends of the long side; maps put back and averaged in the overlap; image
    score = mean of the two tiles'."""
    torch.manual_seed(0)
    model = MODELS.build(anovl_cfg(VIT, 'tfa', image_views='tiles',
                                   align_corners=True)).eval()
    img = torch.randn(2, 3, 64, 96)
    names = ['bottle', 'bottle']
    with torch.no_grad():
        amap, scores = model.score(img, names)
        assert amap.shape == (2, 1, 64, 96)
        left, _ = model.head(*model.features(img[..., :64])[:1],
                             model.head.texts(names))
        right, _ = model.head(*model.features(img[..., 32:])[:1],
                              model.head.texts(names))
        _, g_left = model.features(img[..., :64])
        _, g_right = model.features(img[..., 32:])
    up = lambda m: torch.nn.functional.interpolate(m, size=(64, 64), mode='bilinear',  # noqa
                                                   align_corners=True)
    left, right = up(left), up(right)
    torch.testing.assert_close(amap[..., :32], left[..., :32], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(amap[..., 64:], right[..., 32:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(amap[..., 32:64], (left[..., 32:] + right[..., :32]) / 2,
                               atol=1e-5, rtol=1e-5)
    texts = model.head.texts(names)
    expect = torch.stack([(model.head.probs(g_left[i, :1], texts[i]['text'])[:, 1]
                           + model.head.probs(g_right[i, :1], texts[i]['text'])[:, 1])[0] / 2
                          for i in range(2)])
    torch.testing.assert_close(scores, expect, atol=1e-5, rtol=1e-5)
    # tall images tile along the height
    tall = model._untile(torch.cat([torch.ones(1, 1, 4, 4), 3 * torch.ones(1, 1, 4, 4)]), 6, 4)
    assert tall.shape == (1, 1, 6, 4)
    assert tall[0, 0, :, 0].tolist() == [1, 1, 2, 2, 3, 3]


def test_tta_rejects_unknown_scopes():
    cfg = anovl_cfg(RN, 'tta')
    cfg['head']['tta'].update(optimizer_scope='batch')
    with pytest.raises(ValueError, match='optimizer_scope'):
        MODELS.build(cfg)


def test_tta_lowers_its_loss_on_one_image():
    head = MODELS.build(anovl_cfg(RN, 'tta').head)
    text = head.texts(['bottle'])[0]
    tokens = torch.randn(16, head.text_encoder.embed_dim)
    losses = []
    x = torch.nn.functional.normalize(tokens, dim=-1)
    for steps in (1, 20):
        head.tta_cfg['steps'] = steps
        head.tta_cfg['noise_std'] = 0.5
        head.adapt(tokens, text)
        with torch.no_grad():
            p = head.probs(head.adapter(x, text['bank']), text['text'])
            losses.append(-(p[:, 0].log()).mean().item())
    assert losses[1] < losses[0]


def test_vv_features_differ_from_dense_and_match_shapes():
    model = MODELS.build(anovl_cfg(RN, 'tfa', image_views='single'))
    x = torch.randn(1, 3, 128, 128)
    feats, joint = model.backbone_forward(x)
    c5 = feats[-1]
    vv = attnpool_vv(model.backbone.visual.attnpool, c5, model.backbone.pos_table(4, 4))
    assert vv.shape == (1, model.backbone.embed_dim, 4, 4)
    from clipdense.models.utils.dense_attention import attnpool_dense
    _, dense = attnpool_dense(model.backbone.visual.attnpool, c5,
                              model.backbone.pos_table(4, 4))
    assert not torch.allclose(vv, dense)
    tokens, glob = model.features(x)
    torch.testing.assert_close(tokens, vv)
    torch.testing.assert_close(glob[:, 0], joint['global'])


def test_views():
    img = torch.randn(2, 3, 32, 32)
    v = anovl_views(img, torch.zeros(3), torch.ones(3))
    assert v.shape == (22, 2, 3, 32, 32)
    torch.testing.assert_close(v[0], img)
    torch.testing.assert_close(v[17], img.flip(-1))
    grey = v[18]
    torch.testing.assert_close(grey[:, 0], grey[:, 1])
    # non-square images skip the 90-degree turns
    assert anovl_views(torch.randn(1, 3, 16, 32), torch.zeros(3), torch.ones(3)).shape[0] == 19


def test_views_authors_and_clipdense_styles():
    """The authors' views (utils.aug): diagonal shifts with
    align_corners=True (a shift of 0.2 in [-1, 1] moves the content by 10%),
    grey of the normalised input; clipdense's: axis shifts, grey in pixel
    space."""
    h = 21  # align_corners=True: a grid of 21 px, 0.2 -> exactly 2 px
    img = torch.randn(1, 3, h, h)
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.3, 0.25])
    a = anovl_views(img, mean, std, style='authors')
    c = anovl_views(img, mean, std, style='clipdense')
    assert a.shape == c.shape == (22, 1, 3, h, h)
    # view 9: theta translation (0.2, 0.2): output (i, j) samples (i+2, j+2)
    torch.testing.assert_close(a[9][..., :-2, :-2], img[..., 2:, 2:], atol=1e-5, rtol=1e-5)
    lum = 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]
    torch.testing.assert_close(a[18][:, 0], lum)
    assert not torch.allclose(c[18][:, 0], lum)
    assert not torch.allclose(a[9], c[9])
    with pytest.raises(ValueError, match='view style'):
        anovl_views(img, mean, std, style='other')


def test_prompts_and_averaging():
    p = state_prompts('bottle', 'anovl')
    assert len(p['normal']) == len(p['anomalous']) == 7 * 66
    assert any('manufacturing image' in s for s in p['normal'])
    t = state_prompts('wood', 'anovl')
    assert any('surface picture' in s for s in t['anomalous'])
    assert not any('manufacturing' in s for s in t['anomalous'])
    # AnoVL's templates have no trailing period; template-major order
    assert 'an industrial photo of a flawless bottle' in p['normal']
    assert p['normal'][:2] == ('a cropped industrial photo of the normal bottle',
                               'a cropped industrial photo of the flawless bottle')
    assert 'an industrial photo of a flawless bottle.' in \
        state_prompts('bottle', 'anovl', period=True)['normal']
    assert all(s.endswith('.') for s in state_prompts('bottle', 'winclip')['normal'])
    # the raw folder name reaches the prompt as given
    assert 'a photo of a metal_nut for anomaly detection' in \
        state_prompts('metal_nut', 'winclip', period=False)['normal']
    w = state_prompts('bottle', 'winclip')
    assert len(w['normal']) == 7 * 22 and len(w['anomalous']) == 4 * 22
    with pytest.raises(ValueError, match='unknown prompt style'):
        state_prompts('bottle', 'fancy')
    enc_raw = MODELS.build(dict(type='AnomalyPromptEncoder', arch=RN, pretrained=None))
    enc_norm = MODELS.build(dict(type='AnomalyPromptEncoder', arch=RN, pretrained=None,
                                 average='normalized'))
    enc_norm.load_state_dict(enc_raw.state_dict())
    a, b = enc_raw('bottle'), enc_norm('bottle')
    assert a['text'].shape == (2, 32) and a['bank'].shape == (2 * 7 * 66, 32)
    torch.testing.assert_close(a['bank'], b['bank'])
    n = int(a['num_normal'])
    raw = enc_raw.encode_text(enc_raw.tokenize(enc_raw.prompts('bottle')['normal']))
    expect = torch.nn.functional.normalize(raw.mean(0), dim=-1)
    torch.testing.assert_close(a['text'][0], expect, atol=1e-5, rtol=1e-5)
    expect_n = torch.nn.functional.normalize(a['bank'][:n].mean(0), dim=-1)
    torch.testing.assert_close(b['text'][0], expect_n, atol=1e-5, rtol=1e-5)


def test_windows_and_harmonic_aggregation():
    w = make_windows(3, 3, 2)
    assert w.tolist() == [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
    scores = torch.tensor([[0.5, 0.25, 1.0, 0.5]])
    agg = harmonic_aggregation(scores, w, 9)
    assert agg[0, 0] == pytest.approx(0.5)       # only window 0
    # patch 4 is in all four windows: 4 / (2 + 4 + 1 + 2)
    assert agg[0, 4] == pytest.approx(4 / 9)
    assert agg[0, 1] == pytest.approx(2 / (2 + 4))
    with pytest.raises(ValueError, match='does not fit'):
        make_windows(3, 3, 4)


@pytest.mark.parametrize('arch', [RN, VIT])
def test_winclip(arch):
    model = MODELS.build(winclip_cfg(arch)).eval()
    data = model.data_preprocessor(batch(arch), False)
    with torch.no_grad():
        out = model(data['inputs'], data['data_samples'], mode='predict')
    s = SIZE[arch]
    for ds in out:
        assert ds.pred_anomaly_map.data.shape == (1, s, s)
        assert 0 <= float(ds.pred_score) <= 1
    # a window too big for the grid is refused with the fix
    model.window_sizes = (5, )
    with pytest.raises(ValueError, match='larger input or smaller windows'):
        model(data['inputs'], data['data_samples'], mode='tensor')


def test_bad_configs_and_inputs():
    with pytest.raises(ValueError, match="needs 'dense'"):
        MODELS.build(anovl_cfg(RN, 'tfa', feature_path='dense'))
    cfg = anovl_cfg(VIT, 'tfa')
    cfg.backbone.joint_outputs = ('global', 'dense')
    with pytest.raises(ValueError, match="needs 'vv'"):
        MODELS.build(cfg)
    cfg = anovl_cfg(RN, 'tta')
    cfg.head.tta['temperature'] = 2
    with pytest.raises(ValueError, match='unknown keys'):
        MODELS.build(cfg)
    cfg = anovl_cfg(RN, 'tfa')
    cfg.backbone.joint_outputs = ('dense', )
    with pytest.raises(ValueError, match="lack 'global'"):
        MODELS.build(cfg)
    model = MODELS.build(anovl_cfg(RN, 'baseline')).eval()
    x = torch.randn(1, 3, 128, 128)
    with pytest.raises(ValueError, match='class name'):
        model(x, None, mode='tensor')
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        model(torch.randn(3, 128, 128), None, mode='tensor')
    model.class_name = 'bottle'
    assert model(x, None, mode='tensor').shape == (1, 1, 128, 128)
    with pytest.raises(ValueError, match='invalid mode'):
        model(x, None, mode='train')
    tta = MODELS.build(anovl_cfg(RN, 'tta')).eval()
    tta.class_name = 'bottle'
    with torch.inference_mode(), pytest.raises(RuntimeError, match='inference_mode'):
        tta(x, None, mode='tensor')
