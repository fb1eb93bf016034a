"""OpenCLIPTextEncoder / OpenCLIPContextTextEncoder on tiny architectures."""
import warnings

import open_clip
import pytest
import torch
import torch.nn.functional as F

from clipdense.models.text_encoders import (OpenCLIPContextTextEncoder,
                                            OpenCLIPTextEncoder)
from clipdense.models.utils import (IMAGENET_TEMPLATES, MASKCLIP_TEMPLATES,
                                    VILD_TEMPLATES, get_templates)
from clipdense.testing import register_tiny_models

register_tiny_models()
VIT16, EVA, RN = 'clipdense-tiny-vit16', 'clipdense-tiny-eva16', 'clipdense-tiny-rn'


def reference_model(encoder):
    """An open_clip model holding the encoder's text weights: the encoder's
    state dict is in open_clip's key space, so it loads unchanged."""
    model = open_clip.create_model(encoder.arch)
    missing, unexpected = model.load_state_dict(encoder.state_dict(), strict=False)
    assert not [k for k in unexpected if k != 'contexts']
    assert all(k.startswith('visual.') for k in missing)
    return model.eval()


@pytest.fixture(scope='module')
def encoder():
    torch.manual_seed(0)
    return OpenCLIPTextEncoder(VIT16, templates='single').eval()


def test_template_sets():
    assert len(IMAGENET_TEMPLATES) == 80 and len(VILD_TEMPLATES) == 14
    assert len(MASKCLIP_TEMPLATES) == 85
    assert MASKCLIP_TEMPLATES[:80] == IMAGENET_TEMPLATES
    assert get_templates('single') == ('a photo of a {}.',)
    assert all(t.count('{}') == 1 for t in MASKCLIP_TEMPLATES + VILD_TEMPLATES)
    with pytest.raises(ValueError, match='unknown template set'):
        get_templates('imagenet80')
    with pytest.raises(ValueError, match='exactly one'):
        get_templates(['a photo'])


@pytest.mark.parametrize('arch', [VIT16, EVA])
def test_encode_text_equals_open_clip(arch):
    torch.manual_seed(0)
    enc = OpenCLIPTextEncoder(arch).eval()
    ref = reference_model(enc)
    tokens = open_clip.get_tokenizer(arch)(['a photo of a cat.', 'grass', 'a sofa'])
    with torch.no_grad():
        assert torch.allclose(enc.encode_text(tokens), ref.encode_text(tokens), atol=1e-5)
    assert torch.allclose(enc.logit_scale_exp, ref.logit_scale.exp())
    assert enc.logit_scale_exp.item() == pytest.approx(1 / 0.07, rel=1e-4)


def test_class_embeddings_are_prompt_ensembles(encoder):
    ref = reference_model(encoder)
    tok = open_clip.get_tokenizer(VIT16)
    templates = ['a photo of a {}.', 'a drawing of the {}.']
    with torch.no_grad():
        emb = encoder(['cat', 'sofa, couch'], templates=templates)
        cat = F.normalize(ref.encode_text(tok([t.format('cat') for t in templates])), dim=-1)
        sofa = F.normalize(ref.encode_text(tok(
            [t.format(s) for s in ('sofa', 'couch') for t in templates])), dim=-1)
    expected = F.normalize(torch.stack([cat.mean(0), sofa.mean(0)]), dim=-1)
    assert emb.shape == (2, 32)
    assert torch.allclose(emb, expected, atol=1e-5)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_text_tower_runs_once_per_vocabulary():
    enc = OpenCLIPTextEncoder(VIT16, templates='vild').eval()
    calls = []
    original = enc.encode_text

    def counting(tokens, normalize=False):
        calls.append(tokens.shape[0])
        return original(tokens, normalize)

    enc.encode_text = counting
    vocab = ['cat', 'dog', 'grass']
    with torch.no_grad():
        a = enc(vocab)
        b = enc(list(vocab))
    assert calls == [3 * 14]
    assert torch.equal(a, b)
    b.mul_(0)  # callers may change the result in place
    assert torch.equal(enc(vocab), a) and len(calls) == 1
    with torch.no_grad():
        enc(['cat', 'dog'])
    assert len(calls) == 2
    # new weights -> new cache key
    with torch.no_grad():
        enc.part('ln_final').bias.add_(0.1)
        c = enc(vocab)
    assert len(calls) == 3 and not torch.allclose(a, c)


def test_vocabulary_errors(encoder):
    with pytest.raises(ValueError, match='empty'):
        encoder([])
    with pytest.raises(ValueError, match='repeats class names'):
        encoder(['cat', 'dog', 'Cat '])
    with pytest.raises(ValueError, match='not one string'):
        encoder('cat,dog')
    with pytest.raises(ValueError, match='empty'):
        encoder(['cat', ' , '])
    with pytest.raises(ValueError, match='no vocabulary'):
        encoder()


def test_long_names_truncated_with_one_warning(encoder):
    long_a = ' '.join(['very'] * 90) + ' long cat'
    long_b = ' '.join(['quite'] * 80) + ' long dog'
    with pytest.warns(UserWarning, match='truncated') as record:
        emb = encoder(['cat', long_a, long_b])
    assert len([w for w in record if 'truncated' in str(w.message)]) == 1
    assert torch.isfinite(emb).all()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        encoder(['cat', long_a, long_b])  # cached: no second warning


def test_non_ascii_names(encoder):
    with torch.no_grad():
        emb = encoder(['café', '猫', 'Straße'])
    assert torch.isfinite(emb).all() and emb.shape == (3, 32)
    assert not torch.allclose(emb[0], emb[1])
    # an HTML space entity only: nothing left after CLIP's clean-up
    with pytest.raises(ValueError, match='no tokens'):
        encoder(['cat', '&nbsp;'])


def test_text_encoder_frozen_and_init_weights_noop(encoder):
    assert not any(p.requires_grad for p in encoder.parameters())
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder.init_weights()
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in before.items())


# ---------------------------------------------------------------- contexts
@pytest.mark.parametrize('arch', [RN, EVA])
def test_context_encoder_matches_encode_text_with_word_contexts(arch):
    """Contexts equal to the embeddings of real words reproduce
    ``encode_text`` of the full sentence: insertion after the start token and
    the shifted end-token index are right."""
    torch.manual_seed(0)
    enc = OpenCLIPContextTextEncoder(arch, num_contexts=0, class_context_length=6).eval()
    ref = reference_model(enc)
    tok = open_clip.get_tokenizer(arch)
    words = tok(['a photo of a'])[0, 1:5]  # 4 tokens, no start/end
    context = enc.part('token_embedding')(words)
    with torch.no_grad():
        out = enc(['cat', 'traffic light'], context=context)
        expected = ref.encode_text(tok(['a photo of a cat', 'a photo of a traffic light']))
    assert out.shape == (1, 2, 32)
    assert torch.allclose(out[0], expected, atol=1e-5)


def test_context_encoder_learnable_contexts_and_shapes():
    enc = OpenCLIPContextTextEncoder(RN, vocabulary=['cat', 'dog', 'sofa, couch'],
                                     num_contexts=8, class_context_length=5)
    assert enc.contexts.shape == (1, 8, 32) and enc.contexts.requires_grad
    assert not any(p.requires_grad for n, p in enc.named_parameters() if n != 'contexts')
    out = enc()
    assert out.shape == (1, 3, 32)
    out.sum().backward()
    assert enc.contexts.grad is not None and enc.contexts.grad.abs().sum() > 0
    ctx = torch.randn(2, 8, 32)
    assert enc(context=ctx).shape == (2, 3, 32)
    # synonyms are averaged
    two = enc(['sofa', 'couch'], context=ctx)
    assert torch.allclose(enc(context=ctx)[:, 2], two.mean(1), atol=1e-5)
    with pytest.raises(ValueError, match='exceed'):
        enc(context=torch.randn(1, 80, 32))
    with pytest.raises(ValueError, match='context must be'):
        enc(context=torch.randn(1, 8, 7))


def test_context_encoder_truncates_long_names_once():
    enc = OpenCLIPContextTextEncoder(RN, num_contexts=2, class_context_length=4)
    with pytest.warns(UserWarning, match='truncated'):
        out = enc(['cat', 'traffic light pole'])
    tokens, _, _ = enc.class_tokens(['cat', 'traffic light pole'])
    eot = enc.tokenizer.eot_token_id
    assert tokens.shape == (2, 4) and tokens[1, -1].item() == eot
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match='exceeds the text context'):
        OpenCLIPContextTextEncoder(RN, num_contexts=70, class_context_length=10)


def test_registry_names_do_not_clash():
    from clipdense.registry import MODELS
    assert MODELS.get('OpenCLIPTextEncoder') is OpenCLIPTextEncoder
    assert MODELS.get('OpenCLIPContextTextEncoder') is OpenCLIPContextTextEncoder
    assert MODELS.get('CLIPTextEncoder') is not OpenCLIPTextEncoder
