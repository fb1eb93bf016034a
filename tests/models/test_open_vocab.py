"""models/open_vocab.py and models/utils/text_cache.py: the one owner of the
vocabulary and the one text-embedding cache."""
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from clipdense.models import open_vocab
from clipdense.models.text_encoders import openclip_text_base, openclip_text_encoder
from clipdense.models.utils.text_cache import TextEmbeddingCache
from clipdense.testing import register_tiny_models
from clipdense.testing.runs import ROOT

register_tiny_models()

CONFIG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')
TINY_RN = {
    'model.backbone.arch': 'clipdense-tiny-rn',
    'model.backbone.pretrained': None,
    'model.decode_head.text_encoder.arch': 'clipdense-tiny-rn',
    'model.decode_head.text_encoder.pretrained': None,
}


def count_parses(monkeypatch):
    """Count every call of parse_vocabulary, wherever it is imported from."""
    calls = []
    orig = openclip_text_base.parse_vocabulary

    def counted(vocabulary):
        calls.append(tuple(vocabulary))
        return orig(vocabulary)
    monkeypatch.setattr(openclip_text_base, 'parse_vocabulary', counted)
    monkeypatch.setattr(openclip_text_encoder, 'parse_vocabulary', counted)
    return calls


def test_inference_model_checks_the_vocabulary_once(monkeypatch):
    from clipdense.apis import inference_model, init_model
    model = init_model(CONFIG, cfg_options=TINY_RN)
    img = np.random.RandomState(0).randint(0, 255, (40, 48, 3), np.uint8)
    calls = count_parses(monkeypatch)
    res = inference_model(model, img, vocabulary=['cup', 'sofa, couch', 'sky'])
    assert calls == [('cup', 'sofa, couch', 'sky')]  # once, not three times
    assert res.seg_logits.data.shape[0] == 3 and model.num_classes == 3
    assert model.decode_head.out_channels == model.out_channels == 3
    # a second call with the same vocabulary: checked once more, text cached
    encoded = []
    enc = model.decode_head.text_encoder
    orig = enc._encode_prompts
    monkeypatch.setattr(enc, '_encode_prompts', lambda p, c: encoded.append(p) or orig(p, c))
    inference_model(model, img, vocabulary=['cup', 'sofa, couch', 'sky'])
    assert len(calls) == 2 and encoded == []
    with pytest.raises(ValueError, match='repeats'):
        inference_model(model, img, vocabulary=['cup', 'Cup'])
    assert model.decode_head.vocabulary == ('cup', 'sofa, couch', 'sky')


class _DuckHead(nn.Module):
    """An open-vocabulary module of its own making (no mixin)."""

    def __init__(self):
        super().__init__()
        self.vocabulary = ('a', 'b')
        self.num_classes = self.out_channels = 2

    def set_vocabulary(self, names):
        self.vocabulary = tuple(names)
        self.num_classes = self.out_channels = len(names)


def test_apply_vocabulary_finds_sets_and_syncs():
    model = nn.Module()
    model.decode_head = _DuckHead()
    model.num_classes = model.out_channels = 2
    head = open_vocab.apply_vocabulary(model, ['x', 'y', 'z'])
    assert head is model.decode_head and model.num_classes == model.out_channels == 3
    # modules without the mixin are checked by apply_vocabulary itself
    with pytest.raises(ValueError, match='empty'):
        open_vocab.apply_vocabulary(model, ['x', ' '])
    assert model.num_classes == 3
    with pytest.raises(TypeError, match='no open-vocabulary module'):
        open_vocab.apply_vocabulary(nn.Linear(2, 2), ['a'])


def test_hook_uses_the_owner(monkeypatch):
    from clipdense.engine import DatasetVocabularyHook
    seen = []
    monkeypatch.setattr('clipdense.engine.vocabulary_hook.apply_vocabulary',
                        lambda model, names: seen.append(list(names)))
    ds = SimpleNamespace(metainfo=dict(classes=('wall', 'sky')))
    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=ds))
    DatasetVocabularyHook().before_test(SimpleNamespace(model=nn.Module(), test_loop=loop))
    assert seen == [['wall', 'sky']]


def test_text_cache():
    cache = TextEmbeddingCache(2)
    runs = []
    w = torch.ones(3, requires_grad=True)

    def compute(v):
        def f():
            runs.append(v)
            return w * v
        return f
    a = cache.get('a', compute(1.0))
    assert not a.requires_grad  # computed under no_grad
    a.add_(100)  # callers may change the result: the cache holds its own copy
    assert torch.equal(cache.get('a', compute(1.0)), torch.ones(3)) and runs == [1.0]
    hit = cache.get('a', compute(1.0))
    hit.mul_(0)
    assert torch.equal(cache.get('a', compute(1.0)), torch.ones(3))
    cache.get('b', compute(2.0))
    cache.get('a', compute(1.0))  # a is now the most recent
    cache.get('c', compute(3.0))  # evicts b
    assert 'a' in cache and 'c' in cache and 'b' not in cache and len(cache) == 2
    # trainable: computed with gradients, not cached
    t = cache.get('d', compute(4.0), trainable=True)
    assert t.requires_grad and 'd' not in cache
    cache.put('e', torch.zeros(1), trim=False)
    assert len(cache) == 3
    cache.trim()
    assert len(cache) == 2
    with pytest.raises(ValueError, match='max_size'):
        TextEmbeddingCache(-1)


def test_text_encoder_uses_the_cache():
    from clipdense.registry import MODELS
    enc = MODELS.build(dict(type='OpenCLIPTextEncoder', arch='clipdense-tiny-vit16',
                            pretrained=None, templates='single', max_cached=1))
    assert isinstance(enc._cache, TextEmbeddingCache) and enc._cache.max_size == 1
    a = enc(['cat', 'dog'])
    names, syn = openclip_text_base.parse_vocabulary(['cat', 'dog'])
    assert torch.equal(enc.encode_names(names, syn), a)
    enc(['sky'])
    assert len(enc._cache) == 1
