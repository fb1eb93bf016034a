"""MaskCLIPHead: vocabulary, build-time checks, KS / PD / background, loss."""
import pytest
import torch
from mmengine.config import ConfigDict

from clipdense.registry import MODELS
from clipdense.testing import register_tiny_models

register_tiny_models()

VOCAB = ['cat', 'dog', 'sky']


def text_cfg(arch='clipdense-tiny-vit16'):
    return dict(type='OpenCLIPTextEncoder', arch=arch, pretrained=None,
                templates='single')


def head_cfg(**kw):
    cfg = dict(type='MaskCLIPHead', text_encoder=text_cfg(), vocabulary=VOCAB)
    cfg.update(kw)
    return cfg


def segmentor_cfg(arch='clipdense-tiny-vit16', **head_kw):
    if 'vit' in arch:
        backbone = dict(type='OpenCLIPViT', arch=arch, pretrained=None, pyramid=False,
                        out_indices=(-1, ), joint_outputs=('value', 'keys'))
    else:
        backbone = dict(type='OpenCLIPResNet', arch=arch, pretrained=None,
                        out_indices=(3, ), joint_outputs=('value', ))
    head = head_cfg(**head_kw)
    head['text_encoder'] = text_cfg(arch)
    return ConfigDict(type='EncoderDecoder',
                data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0],
                                       std=[255, 255, 255]),
                backbone=backbone, decode_head=head, test_cfg=dict(mode='whole'))


def count_text_calls(head):
    calls = []
    enc = head.text_encoder
    orig = enc._encode_prompts

    def wrapped(prompts, ctx):
        calls.append(list(prompts))
        return orig(prompts, ctx)
    enc._encode_prompts = wrapped
    return calls


def test_output_channels_follow_vocabulary():
    head = MODELS.build(head_cfg())
    assert head.num_classes == head.out_channels == 3
    feats = (torch.randn(2, 32, 4, 4), {'value': torch.randn(2, 32, 4, 4)})
    assert head(feats).shape == (2, 3, 4, 4)
    head.set_vocabulary(['a', 'b', 'c', 'd', 'e'])
    assert head.num_classes == head.out_channels == 5
    assert head(feats).shape == (2, 5, 4, 4)


def test_num_classes_mismatch_fails_at_build():
    with pytest.raises(ValueError, match='num_classes=5 but the vocabulary has 3'):
        MODELS.build(head_cfg(num_classes=5))
    with pytest.raises(ValueError, match='needs a vocabulary'):
        MODELS.build(dict(type='MaskCLIPHead', text_encoder=text_cfg()))
    with pytest.raises(ValueError, match='repeats'):
        MODELS.build(head_cfg(vocabulary=['cat', 'cat']))
    with pytest.raises(ValueError, match='bg_index'):
        MODELS.build(head_cfg(bg_thresh=0.5))
    with pytest.raises(ValueError, match='ks_thresh'):
        MODELS.build(head_cfg(ks_thresh=2.0))


def test_num_classes_given_and_equal():
    head = MODELS.build(head_cfg(num_classes=3))
    assert head.num_classes == 3


def test_set_vocabulary_encodes_text_only_once():
    head = MODELS.build(head_cfg())
    feats = ({'value': torch.randn(1, 32, 2, 2)}, )
    head(feats)
    calls = count_text_calls(head)
    head(feats)
    assert calls == []  # cached
    head.set_vocabulary(['tree', 'road'])
    assert len(calls) == 1 and calls[0] == ['a photo of a tree.', 'a photo of a road.']
    out = head(feats)
    assert out.shape[1] == 2 and len(calls) == 1
    head.set_vocabulary(VOCAB)  # seen before: cached
    head(feats)
    assert len(calls) == 1


def test_cosine_classification_matches_text_embeddings():
    head = MODELS.build(head_cfg())
    text = head.class_embeddings()  # (3, 32)
    # pixel features equal to (scaled) class embeddings -> that class
    value = (text.t() * torch.tensor([3.0, 0.5, 7.0])).reshape(1, 32, 1, 3)
    pred = head(({'value': value}, )).argmax(dim=1)
    assert pred.tolist() == [[[0, 1, 2]]]
    # log-probabilities
    assert torch.allclose(head(({'value': value}, )).exp().sum(1), torch.ones(1, 1, 3))


def test_prompt_denoising_removes_low_confidence_class():
    head = MODELS.build(head_cfg(pd_thresh=0.5))
    # pixels 0, 1 confident (class 0, 1); pixel 2 is class 2 but only at 0.39
    logits = torch.tensor([[10., 0., 0.], [0., 10., 0.], [0., 0.5, 0.6]]).t()
    logits = logits.reshape(1, 3, 1, 3)
    off = MODELS.build(head_cfg())
    assert off.refine(logits.clone()).argmax(1).tolist() == [[[0, 1, 2]]]
    out = head.refine(logits.clone())
    assert out.argmax(1).tolist() == [[[0, 1, 1]]]  # class 2 removed from the image
    assert out[:, 2].exp().max() < 1e-3
    # a class that is confident somewhere survives
    logits[0, 2, 0, 2] = 20.
    assert head.refine(logits.clone()).argmax(1).tolist() == [[[0, 1, 2]]]


def test_key_smoothing_propagates_from_similar_keys():
    head = MODELS.build(head_cfg(ks_thresh=0.8))
    # pixel 0 confident class 0; pixel 1 unsure (class 1 at ~0.4) but has
    # the same key as pixel 0; pixel 2 confident class 2, orthogonal key
    logits = torch.tensor([[10., 0., 0.], [0.3, 0.5, 0.], [0., 0., 10.]]).t()
    logits = logits.reshape(1, 3, 1, 3)
    keys = torch.tensor([[1., 0.], [1., 0.], [0., 1.]]).t().reshape(1, 2, 1, 3)
    off = MODELS.build(head_cfg())
    assert off.refine(logits.clone()).argmax(1).tolist() == [[[0, 1, 2]]]
    out = head.refine(logits.clone(), keys)
    assert out.argmax(1).tolist() == [[[0, 0, 2]]]
    # confident pixels are untouched
    assert torch.allclose(out[..., 0], off.refine(logits.clone())[..., 0])


def test_authors_refine_mode_scores_and_smoothing():
    """refine_mode='authors' (MaskCLIP's refine_output): cosine output
    without refinement, keys normalised over the token axis, only
    low-confidence pixels replaced by the raw S @ P."""
    head = MODELS.build(head_cfg(refine_mode='authors'))
    ref = MODELS.build(head_cfg())
    ref.load_state_dict(head.state_dict())
    value = torch.randn(1, 32, 2, 3)
    out = head(({'value': value}, ))
    cos = torch.einsum('bdhw,kd->bkhw', torch.nn.functional.normalize(value, dim=1),
                       head.class_embeddings())
    torch.testing.assert_close(out, 100 * cos)  # the authors' cosine x logit_scale
    assert torch.equal(out.argmax(1), ref(({'value': value}, )).argmax(1))
    # ...so a softmax gives the probabilities of the clipdense mode
    torch.testing.assert_close(out.softmax(1), ref(({'value': value}, )).exp())
    ks = MODELS.build(head_cfg(refine_mode='authors', ks_thresh=0.8))
    cosines = torch.tensor([[0.1, 0., 0.], [0.003, 0.005, 0.], [0., 0., 0.1]]).t()
    cosines = cosines.reshape(1, 3, 1, 3)
    # keys: token 0 and 1 similar; scaled so that a per-token and a per-axis
    # normalisation differ
    keys = torch.tensor([[3., 0.], [1., 0.1], [0., 1.]]).t().reshape(1, 2, 1, 3)
    out = ks.refine_authors(cosines.clone(), keys) / 100
    p = (cosines * 100).softmax(1).flatten(2)[0].t()  # (3 tokens, 3 classes)
    k = keys.flatten(2)[0].t()  # (3 tokens, 2)
    k = k / k.norm(dim=0, keepdim=True)  # over the tokens
    smoothed = (k @ k.t()) @ p
    expect = p.clone()
    expect[1] = smoothed[1]  # only the unsure pixel
    torch.testing.assert_close(out.flatten(2)[0].t(), expect)
    assert out.argmax(1).tolist() == [[[0, 0, 2]]]
    # prompt denoising: no class is kept
    pd = MODELS.build(head_cfg(refine_mode='authors', pd_thresh=1.0))
    assert (pd.refine_authors(cosines.clone()) == -100 * 100).all()
    pd = MODELS.build(head_cfg(refine_mode='authors', pd_thresh=0.9))
    out = pd.refine_authors(cosines.clone()) / 100
    assert (out[:, 1] == -100).all()
    torch.testing.assert_close(out[:, 0], cosines[:, 0])
    with pytest.raises(ValueError, match='bg_thresh'):
        MODELS.build(head_cfg(refine_mode='authors', bg_thresh=0.5, bg_index=0))
    with pytest.raises(ValueError, match='refine_mode'):
        MODELS.build(head_cfg(refine_mode='paper'))


def test_key_smoothing_needs_keys():
    head = MODELS.build(head_cfg(ks_thresh=1.0))
    with pytest.raises(KeyError, match="'keys'"):
        head(({'value': torch.randn(1, 32, 2, 2)}, ))
    with pytest.raises(KeyError, match="joint_outputs"):
        head((torch.randn(1, 32, 2, 2), ))


def test_background_threshold():
    head = MODELS.build(head_cfg(bg_thresh=0.6, bg_index=2))
    logits = torch.tensor([[10., 0., 0.], [0.5, 0.6, 0.]]).t().reshape(1, 3, 1, 2)
    assert head.refine(logits).argmax(1).tolist() == [[[0, 2]]]
    with pytest.raises(ValueError, match='bg_index'):
        head.set_vocabulary(['a', 'b'])


def test_loss_raises_training_free():
    head = MODELS.build(head_cfg())
    with pytest.raises(RuntimeError, match='training-free'):
        head.loss(({'value': torch.randn(1, 32, 2, 2)}, ), [], {})


@pytest.mark.parametrize('arch,kw', [('clipdense-tiny-vit16', dict(ks_thresh=1.0, pd_thresh=0.4)),
                                     ('clipdense-tiny-rn', dict(pd_thresh=0.4)),
                                     ('clipdense-tiny-rn', {})])
def test_segmentor_predict(arch, kw):
    model = MODELS.build(segmentor_cfg(arch, **kw)).eval()
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(img_shape=(64, 96), ori_shape=(64, 96)))
    with torch.no_grad():
        out = model.predict(torch.rand(1, 3, 64, 96), [sample])
    assert out[0].seg_logits.data.shape == (3, 64, 96)
    assert out[0].pred_sem_seg.data.shape == (1, 64, 96)
    with pytest.raises(RuntimeError, match='training-free'):
        model.loss(torch.rand(1, 3, 64, 96), [sample])
