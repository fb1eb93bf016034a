"""Labels without full-size logits (issue 13): ``bilinear_argmax`` and
``test_cfg.labels_only`` give mmseg's labels."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmseg.structures import SegDataSample

from clipdense.apis.benchmark import build_model
from clipdense.models.utils.label_argmax import (_lerp_axis, bilinear_argmax,
                                                 mmseg_resize_matrices,
                                                 resize_matrix,
                                                 upsample_argmax_reference)
from clipdense.testing.runs import ROOT

CFG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')


def mmseg_chain(low, pad_hw, padding, ori_hw, flip=None, align_corners=False):
    """What mmseg does: head resize, padding crop, flip, resize to ori."""
    left, right, top, bottom = padding
    z = F.interpolate(low[None], size=pad_hw, mode='bilinear',
                      align_corners=align_corners)
    z = z[:, :, top:pad_hw[0] - bottom, left:pad_hw[1] - right]
    if flip == 'horizontal':
        z = z.flip(3)
    elif flip == 'vertical':
        z = z.flip(2)
    return F.interpolate(z, size=ori_hw, mode='bilinear',
                         align_corners=align_corners)[0]


def smooth_logits(k, h, w, seed, noise=1.0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(k, 3, 3, generator=g)
    low = F.interpolate(base[None], size=(h, w), mode='bilinear')[0] * 3
    return low + noise * torch.randn(k, h, w, generator=g)


CASES = [
    # (K, h, w, pad_hw, padding, ori_hw, flip, align_corners)
    (50, 8, 8, (128, 128), [0, 0, 0, 0], (128, 128), None, False),
    (300, 9, 13, (144, 208), [0, 5, 0, 3], (90, 130), None, False),
    (30, 8, 8, (128, 128), [0, 0, 0, 0], (300, 211), 'horizontal', False),
    (30, 7, 10, (112, 160), [2, 0, 4, 0], (50, 77), 'vertical', True),
    (40, 16, 16, (16, 16), [0, 0, 0, 0], (10, 13), None, False),  # shrink
]


@pytest.mark.parametrize('case', CASES)
def test_resize_matrices_reproduce_mmseg_chain(case):
    k, h, w, pad_hw, padding, ori_hw, flip, ac = case
    low = smooth_logits(k, h, w, 0)
    ay, ax = mmseg_resize_matrices((h, w), pad_hw, padding, ori_hw, flip=flip,
                                   align_corners=ac)
    assert ay.shape == (ori_hw[0], h) and ax.shape == (ori_hw[1], w)
    assert (ay >= 0).all() and (ax >= 0).all()
    dense = torch.einsum('yi,cij,xj->cyx', ay, low, ax)
    assert torch.allclose(dense, mmseg_chain(low, pad_hw, padding, ori_hw,
                                             flip, ac), atol=1e-4)


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('noise', [0.3, 3.0])
def test_bilinear_argmax_equals_dense_argmax(case, noise):
    k, h, w, pad_hw, padding, ori_hw, flip, ac = case
    low = smooth_logits(k, h, w, 1, noise)
    ay, ax = mmseg_resize_matrices((h, w), pad_hw, padding, ori_hw, flip=flip,
                                   align_corners=ac)
    labels = bilinear_argmax(low, ay, ax)
    assert labels.shape == tuple(ori_hw) and labels.dtype == torch.long
    assert torch.equal(labels, upsample_argmax_reference(low, ay, ax))
    # and mmseg's own chain (float rounding may flip an exact near-tie)
    ref = mmseg_chain(low, pad_hw, padding, ori_hw, flip, ac).argmax(0)
    assert (labels == ref).float().mean() > 0.999


def test_bilinear_argmax_small_chunks_and_tiles():
    low = smooth_logits(64, 8, 8, 2, 2.0)
    ay, ax = mmseg_resize_matrices((8, 8), (128, 128), [0] * 4, (128, 128))
    ref = upsample_argmax_reference(low, ay, ax)
    for tile in (2, 4, 16):
        assert torch.equal(bilinear_argmax(low, ay, ax, tile=tile, chunk=999), ref)


@pytest.mark.parametrize('geometry', [
    ((8, 8), (128, 128), [0, 0, 0, 0], (128, 128)),
    ((8, 8), (512, 512), [0, 0, 0, 0], (512, 512)),
    ((7, 9), (112, 144), [0, 16, 0, 16], (96, 128)),
    ((1, 5), (16, 80), [0, 0, 0, 0], (16, 80)),
])
def test_bilinear_argmax_ties_go_to_the_first_class(geometry):
    """mmseg's argmax keeps the first of equal classes. With integer logits
    and power-of-two scales every value is exact, so ties are real: a
    duplicated class and integer logits must give the reference's labels."""
    low_hw, pad_hw, padding, ori_hw = geometry
    ay, ax = mmseg_resize_matrices(low_hw, pad_hw, padding, ori_hw)
    for seed in range(3):
        low = smooth_logits(40, *low_hw, seed, 2.0)
        low[17] = low[5]  # a class listed twice: 5 wins, never 17
        low[3] = low[30]
        labels = bilinear_argmax(low, ay, ax)
        assert torch.equal(labels, upsample_argmax_reference(low, ay, ax))
        assert not (labels == 17).any() and not (labels == 30).any()
        low = low.round()
        assert torch.equal(bilinear_argmax(low, ay, ax),
                           upsample_argmax_reference(low, ay, ax))


def test_single_resize_tiles_share_grid_corners():
    """One resize (crops, flips): tiles between shared corners on a grid of
    the input axis; a second resize: tiles with their own corners."""
    ay, _ = mmseg_resize_matrices((32, 32), (512, 512), [0] * 4, (512, 512))
    axis = _lerp_axis(ay, 8)
    assert axis is not None and axis.shared
    # spacing 1/2 of a 16x upsampling: 62 tiles of at most 10 distinct rows
    assert axis.nt == 62 and axis.rows.shape[1] <= 10
    # the 8 clamped rows at each border are computed once
    assert axis.n_rows == 512 - 14 and torch.equal(axis.inv[:8], torch.zeros(8, dtype=torch.long))
    ay2, _ = mmseg_resize_matrices((9, 13), (144, 208), [0, 5, 0, 3], (90, 130))
    assert _lerp_axis(ay2, 8) is None


def test_one_class_and_flat_logits():
    ay, ax = mmseg_resize_matrices((4, 4), (32, 32), [0] * 4, (32, 32))
    assert (bilinear_argmax(torch.randn(1, 4, 4), ay, ax) == 0).all()
    # a class that is best everywhere wins everywhere, with no evaluation
    low = torch.zeros(5, 4, 4)
    low[3] = 1
    assert (bilinear_argmax(low, ay, ax) == 3).all()


def test_bad_inputs():
    ay, ax = mmseg_resize_matrices((4, 4), (32, 32), [0] * 4, (32, 32))
    with pytest.raises(ValueError, match='do not match'):
        bilinear_argmax(torch.randn(3, 5, 4), ay, ax)
    with pytest.raises(ValueError, match='non-negative'):
        bilinear_argmax(torch.randn(3, 4, 4), -ay, ax)
    with pytest.raises(ValueError, match=r'\(K, h, w\)'):
        bilinear_argmax(torch.randn(4, 4), ay, ax)
    with pytest.raises(ValueError, match='tile and chunk must be positive'):
        bilinear_argmax(torch.randn(3, 4, 4), ay, ax, tile=0)
    with pytest.raises(ValueError, match='all-zero row'):
        bilinear_argmax(torch.randn(3, 4, 4), ay * 0, ax)
    with pytest.raises(ValueError, match='unknown step'):
        resize_matrix(4, [('rotate', 3)])


def tiny_maskclip(labels_only):
    cfg = Config.fromfile(CFG)
    torch.manual_seed(0)
    return build_model(cfg, random_weights=True, labels_only=labels_only)


def samples_for(shape, pad_hw, padding, ori_hw, flip=None):
    meta = dict(img_shape=shape, pad_shape=pad_hw, ori_shape=ori_hw,
                padding_size=padding)
    if flip:
        meta.update(flip=True, flip_direction=flip)
    return [SegDataSample(metainfo=meta)]


@pytest.mark.parametrize('geometry', [
    ((128, 128), [0, 0, 0, 0], (128, 128), None),
    ((128, 160), [0, 16, 0, 8], (60, 75), 'horizontal'),
])
def test_labels_only_segmentor_equals_mmseg_predict(geometry):
    pad_hw, padding, ori_hw, flip = geometry
    full, fast = tiny_maskclip(False), tiny_maskclip(True)
    fast.load_state_dict(full.state_dict())
    assert type(fast).__name__ == 'SlideBatchEncoderDecoder'
    assert fast.test_cfg['labels_only'] is True
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(1, 3, *pad_hw, generator=g)
    shape = (pad_hw[0] - padding[2] - padding[3], pad_hw[1] - padding[0] - padding[1])
    with torch.no_grad():
        a = full.predict(inputs, samples_for(shape, pad_hw, padding, ori_hw, flip))[0]
        b = fast.predict(inputs, samples_for(shape, pad_hw, padding, ori_hw, flip))[0]
    assert b.pred_sem_seg.data.shape == a.pred_sem_seg.data.shape == (1, *ori_hw)
    assert (a.pred_sem_seg.data == b.pred_sem_seg.data).float().mean() > 0.999
    # no full-size score maps are kept
    assert 'seg_logits' not in b and 'seg_logits' in a
    # without data samples: labels at the input size
    with torch.no_grad():
        c = fast.predict(inputs)[0]
    assert c.pred_sem_seg.data.shape == (1, *pad_hw)


def test_labels_only_refuses_slide_mode():
    model = tiny_maskclip(True)
    model.test_cfg.update(mode='slide', crop_size=(64, 64), stride=(40, 40))
    inputs = torch.randn(1, 3, 128, 128)
    with pytest.raises(ValueError, match="labels_only needs mode='whole'"):
        model.predict(inputs, samples_for((128, 128), (128, 128), [0] * 4, (128, 128)))


def test_options_switch_encoder_decoder_or_are_refused(tmp_path):
    from clipdense.apis.inference import init_model
    from clipdense.models.segmentors.batched_slide import \
        apply_inference_options
    cfg = Config.fromfile(CFG)
    cfg.model.test_cfg = dict(mode='whole', labels_only=True)
    assert cfg.model.type == 'EncoderDecoder'
    apply_inference_options(cfg.model)
    assert cfg.model.type == 'SlideBatchEncoderDecoder'
    # init_model does it too: the option is not silently ignored
    cfg = Config.fromfile(CFG)
    cfg.model.test_cfg = dict(mode='whole', labels_only=True)
    from clipdense.apis.benchmark import weights_off
    cfg.model = Config(weights_off(cfg.model.to_dict()))
    model = init_model(cfg)
    assert type(model).__name__ == 'SlideBatchEncoderDecoder'
    # a segmentor without the mixins refuses the options
    for key, value in (('labels_only', True), ('slide_batch_size', 4)):
        bad = dict(type='DenseCLIPSegmentor', test_cfg={key: value})
        with pytest.raises(ValueError, match=f'test_cfg.{key}.*DenseCLIPSegmentor'):
            apply_inference_options(bad)
    # off / absent: untouched
    plain = dict(type='EncoderDecoder', test_cfg=dict(mode='whole', labels_only=False))
    apply_inference_options(plain)
    assert plain['type'] == 'EncoderDecoder'


def test_labels_from_features_is_predict_after_the_backbone():
    """The speed report times the vocabulary-dependent part alone."""
    model = tiny_maskclip(True)
    g = torch.Generator().manual_seed(1)
    inputs = torch.randn(1, 3, 128, 128, generator=g)
    geometry = ((128, 128), (128, 128), [0, 0, 0, 0], (128, 128))
    with torch.no_grad():
        a = model.predict(inputs, samples_for(*geometry))[0]
        b = model.labels_from_features(model.extract_feat(inputs),
                                       samples_for(*geometry))[0]
    assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


def test_compare_latency_alternates_the_order():
    from clipdense.apis.benchmark import compare_latency
    order = []
    fns = {'a': lambda: order.append('a'), 'b': lambda: order.append('b')}
    res = compare_latency(fns, repeat=3, warmup=0, alternate=True)
    assert order == ['a', 'b', 'b', 'a', 'a', 'b']
    assert len(res['times']['a']) == len(res['times']['b']) == 3
    assert set(res['ratio']) == {'b'} and len(res['ratio_per_round']['b']) == 3
    order.clear()
    compare_latency(fns, repeat=2, warmup=0)
    assert order == ['a', 'b', 'a', 'b']
