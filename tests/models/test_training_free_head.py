"""TrainingFreeHead: the base of MaskCLIP's and ReCo's heads (cosine
classifier against the cached text, training-free loss, the vocabulary of
OpenVocabMixin)."""
import pytest
import torch
import torch.nn.functional as F

from clipdense.models.decode_heads.maskclip_head import MaskCLIPHead
from clipdense.models.decode_heads.training_free_head import (TrainingFreeError,
                                                              TrainingFreeHead)
from clipdense.models.open_vocab import OpenVocabMixin
from clipdense.models.reco.reco_head import ReCoHead
from clipdense.registry import MODELS
from clipdense.testing import register_tiny_models

register_tiny_models()


class CosineHead(TrainingFreeHead):
    """The smallest training-free head: cosine of the last input."""

    def forward(self, inputs):
        return self.cosine(inputs[-1])


def text_cfg():
    return dict(type='OpenCLIPTextEncoder', arch='clipdense-tiny-vit16', pretrained=None,
                templates='single')


def test_subclasses():
    assert issubclass(MaskCLIPHead, TrainingFreeHead)
    assert issubclass(ReCoHead, TrainingFreeHead)
    assert issubclass(TrainingFreeHead, OpenVocabMixin)


def test_cosine_against_the_cached_text():
    head = CosineHead(text_cfg(), ['cat', 'dog', 'sky'])
    assert head.num_classes == head.out_channels == 3
    assert not hasattr(head, 'conv_seg')
    feat = torch.randn(2, 32, 3, 4)
    out = head((feat, ))
    text = head.text_encoder(['cat', 'dog', 'sky'])
    expected = torch.einsum('bdhw,kd->bkhw', F.normalize(feat, dim=1), text)
    assert torch.allclose(out, expected, atol=1e-6)
    # the text tower runs once per vocabulary
    calls = []
    orig = head.text_encoder._encode_prompts
    head.text_encoder._encode_prompts = lambda p, c: calls.append(p) or orig(p, c)
    head((feat, ))
    assert calls == []
    head.set_vocabulary(['road', 'tree'])
    assert len(calls) == 1 and head.num_classes == head.out_channels == 2
    assert head((feat, )).shape == (2, 2, 3, 4)
    assert len(calls) == 1
    head.set_vocabulary(['cat', 'dog', 'sky'])  # seen before: cached
    assert len(calls) == 1


def test_vocabulary_checks():
    with pytest.raises(ValueError, match='CosineHead needs a vocabulary'):
        CosineHead(text_cfg())
    with pytest.raises(ValueError, match='num_classes=4 but the vocabulary has 2'):
        CosineHead(text_cfg(), ['a', 'b'], num_classes=4)
    with pytest.raises(ValueError, match='in_channels=16'):
        CosineHead(text_cfg(), ['a', 'b'], in_channels=16)
    with pytest.raises(TypeError, match='config dict or a module'):
        CosineHead('OpenCLIPTextEncoder', ['a'])
    head = CosineHead(MODELS.build(text_cfg()), ['a', 'b'])  # a module is used as is
    with pytest.raises(ValueError, match='repeats'):
        head.set_vocabulary(['a', 'A'])
    assert head.vocabulary == ('a', 'b')  # unchanged after a refused vocabulary
    with pytest.raises(ValueError, match='more than the text context'):
        head.set_vocabulary(['a', 'word ' * 80])
    with pytest.raises(ValueError, match='not the same CLIP'):
        head((torch.randn(1, 16, 2, 2), ))


def test_loss_names_the_problem_and_the_fix():
    head = CosineHead(text_cfg(), ['a', 'b'])
    with pytest.raises(TrainingFreeError, match=r'CosineHead is training-free.*no loss.*'
                       r'inference/testing only \(tools/test.py'):
        head.loss((torch.randn(1, 32, 2, 2), ), [], {})
    with pytest.raises(RuntimeError, match='training-free'):
        head.loss_by_feat(torch.randn(1, 2, 2, 2), [])
