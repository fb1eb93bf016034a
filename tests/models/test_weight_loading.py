"""pretrained= paths: open_clip checkpoints, safetensors, TorchScript archives,
tags (offline), refusal of foreign weights; init_weights keeps loaded weights."""
import os
import time
import warnings

import open_clip
import pytest
import torch

from clipdense.models.backbones import OpenCLIPResNet, OpenCLIPViT
from clipdense.models.text_encoders import (OpenCLIPContextTextEncoder,
                                            OpenCLIPTextEncoder)
from clipdense.models.utils import load_weight_file, resolve_pretrained
from clipdense.testing import register_tiny_models

register_tiny_models()
RN, VIT16, VIT14, EVA = ('clipdense-tiny-rn', 'clipdense-tiny-vit16',
                         'clipdense-tiny-vit14', 'clipdense-tiny-eva16')
SIZE = {RN: 64, VIT16: 64, VIT14: 56, EVA: 64}


def backbone_cls(arch):
    return OpenCLIPResNet if arch == RN else OpenCLIPViT


def make_clip(arch, seed=1, **kwargs):
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, **kwargs).eval()
    with torch.no_grad():  # make sure nothing equals a fresh init by chance
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model


def assert_towers_match(model, path, arch, **kwargs):
    bb = backbone_cls(arch)(arch, pretrained=path, joint_outputs=('global',), **kwargs).eval()
    te = OpenCLIPTextEncoder(arch, pretrained=path, **kwargs).eval()
    x = torch.randn(2, 3, SIZE[arch], SIZE[arch])
    tokens = open_clip.get_tokenizer(arch)(['a photo of a cat', 'grass'])
    with torch.no_grad():
        assert torch.allclose(bb(x)[-1]['global'], model.encode_image(x), atol=1e-5)
        assert torch.allclose(te.encode_text(tokens), model.encode_text(tokens), atol=1e-5)
    assert bb.weights_loaded and te.weights_loaded
    return bb, te


@pytest.mark.parametrize('arch', [RN, VIT16, EVA])
def test_open_clip_state_dict_file(tmp_path, arch):
    model = make_clip(arch)
    path = str(tmp_path / 'clip.pt')
    torch.save(model.state_dict(), path)
    assert_towers_match(model, path, arch)


def test_checkpoint_under_state_dict_with_module_prefix(tmp_path):
    model = make_clip(VIT14)
    path = str(tmp_path / 'ckpt.pth')
    torch.save({'epoch': 3, 'state_dict': {f'module.{k}': v for k, v in
                                           model.state_dict().items()}}, path)
    assert_towers_match(model, path, VIT14)


def test_safetensors_file(tmp_path):
    from safetensors.torch import save_file
    model = make_clip(VIT16)
    path = str(tmp_path / 'clip.safetensors')
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    assert_towers_match(model, path, VIT16)


def test_openai_torchscript_archive_sets_quick_gelu(tmp_path):
    """An OpenAI-style TorchScript archive (weights trained with QuickGELU):
    read without running TorchScript, and QuickGELU is switched on."""
    model = make_clip(VIT16, force_quick_gelu=True)
    x = torch.randn(1, 3, 64, 64)
    tokens = open_clip.get_tokenizer(VIT16)(['a cat'])
    path = str(tmp_path / 'ViT-B-16.pt')
    with warnings.catch_warnings():  # tracer and jit deprecation notices
        warnings.simplefilter('ignore')
        archive = torch.jit.trace_module(
            model, dict(encode_image=(x,), encode_text=(tokens,)), check_trace=False)
        torch.jit.save(archive, path)
    sd, is_openai = load_weight_file(path)
    assert is_openai and 'attn_mask' not in sd
    bb, te = assert_towers_match(model, path, VIT16)
    assert type(te.transformer.resblocks[0].mlp.gelu).__name__ == 'QuickGELU'
    # forcing plain GELU gives different text embeddings
    plain = OpenCLIPTextEncoder(VIT16, pretrained=path, quick_gelu=False).eval()
    with torch.no_grad():
        assert not torch.allclose(plain.encode_text(tokens), model.encode_text(tokens),
                                  atol=1e-4)


def test_one_file_for_backbone_and_context_encoder(tmp_path):
    model = make_clip(RN)
    path = str(tmp_path / 'rn.bin')
    torch.save(model.state_dict(), path)
    enc = OpenCLIPContextTextEncoder(RN, pretrained=path)
    assert torch.equal(enc.token_embedding.weight, model.token_embedding.weight)
    assert torch.equal(enc.positional_embedding, model.positional_embedding)


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = str(tmp_path / 'vit.pt')
    torch.save(make_clip(VIT16).state_dict(), path)
    with pytest.raises(ValueError, match=r'\d+ missing .* \d+ unexpected') as e:
        OpenCLIPResNet(RN, pretrained=path)
    assert 'strict=False' in str(e.value)
    with pytest.raises(ValueError, match='shape-mismatched'):
        OpenCLIPViT(VIT14, pretrained=path)
    with pytest.warns(UserWarning, match='matching keys only'):
        bb = OpenCLIPViT(VIT14, pretrained=path, strict=False)
    assert bb.load_report['mismatched']
    # the text towers of the two tiny ViTs have the same shapes
    OpenCLIPTextEncoder(VIT14, pretrained=path)


def test_init_weights_keeps_loaded_weights(tmp_path):
    model = make_clip(EVA)
    path = str(tmp_path / 'eva.pt')
    torch.save(model.state_dict(), path)
    bb = OpenCLIPViT(EVA, pretrained=path)
    bb.init_weights()
    for k, v in model.visual.state_dict().items():
        assert torch.equal(bb.visual.state_dict()[k], v), k
    te = OpenCLIPTextEncoder(EVA, pretrained=path)
    te.init_weights()
    assert torch.equal(te.text.token_embedding.weight, model.text.token_embedding.weight)


def test_pickle_with_objects_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pt')
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'obj': _Payload()}, path)
    with pytest.raises(ValueError, match='weights_only'):
        load_weight_file(path)


class _Payload:
    pass


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('CLIPDENSE_WEIGHTS_DIR', str(tmp_path / 'clip'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf'))
    return tmp_path


def test_uncached_tag_offline_fails_at_once_naming_the_file(offline):
    start = time.monotonic()
    with pytest.raises(RuntimeError) as e:
        OpenCLIPResNet('RN50', pretrained='openai')
    msg = str(e.value)
    assert time.monotonic() - start < 5
    assert 'RN50.pt' in msg and 'openaipublic' in msg
    assert os.path.join(str(offline / 'clip'), 'RN50.pt') in msg
    assert 'HF_HUB_OFFLINE' in msg and "pretrained='/path/to/file'" in msg
    with pytest.raises(RuntimeError, match='huggingface.co/laion'):
        OpenCLIPTextEncoder('ViT-B-32', pretrained='laion2b_s34b_b79k')


def test_cached_tag_files_are_found(offline):
    url_cached = offline / 'clip' / 'RN50.pt'
    url_cached.parent.mkdir(parents=True)
    url_cached.write_bytes(b'x')
    assert resolve_pretrained('RN50', 'openai').path == str(url_cached)
    snap = offline / 'hf' / 'models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K' / 'snapshots' / 'abc'
    snap.mkdir(parents=True)
    (snap / 'open_clip_model.safetensors').write_bytes(b'x')
    src = resolve_pretrained('ViT-B-32', 'laion2b_s34b_b79k')
    assert src.path == str(snap / 'open_clip_model.safetensors')
    canonical = offline / 'clip' / 'ViT-B-32-laion2b_s34b_b79k.bin'
    canonical.write_bytes(b'x')
    assert resolve_pretrained('ViT-B-32', 'laion2b_s34b_b79k').path == str(canonical)
    assert resolve_pretrained('RN50', 'openai').quick_gelu is True


def test_bad_pretrained_values(offline):
    with pytest.raises(ValueError, match="Tags of 'RN50'.*openai"):
        resolve_pretrained('RN50', 'opnai')
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        OpenCLIPResNet(RN, pretrained=str(offline / 'missing.pt'))


def test_bare_image_tower_state_dict(tmp_path):
    model = make_clip(VIT16)
    path = str(tmp_path / 'visual.pth')
    torch.save(model.visual.state_dict(), path)
    bb = OpenCLIPViT(VIT16, pretrained=path, joint_outputs=('global',)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(bb(x)[-1]['global'], model.encode_image(x), atol=1e-5)
