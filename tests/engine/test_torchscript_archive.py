"""TorchScript archives are read without running TorchScript (issue 26.1).

A crafted archive whose TorchScript ``__setstate__`` overwrites the head of a
file (``torch.from_file(path, True, n)``) is shown to do so under
``torch.jit.load``, then given to every clipdense loading route: none of
them runs it. Genuine archives (a tiny CLIP in OpenAI's layout, scripted
and traced) read to exactly the state dict ``torch.jit.load`` gives.
"""
import io
import os
import pickle
import warnings
import zipfile
from typing import Tuple

import numpy as np
import open_clip
import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from clipdense.fileio import UnsafeCheckpointError, safe_torch_load
from clipdense.fileio.torchscript_archive import (UnsafeTorchScriptError,
                                                  is_torchscript_archive,
                                                  read_torchscript_state_dict)
from clipdense.models.utils import load_weight_file
from clipdense.testing import register_tiny_models

register_tiny_models()
RN, VIT16 = 'clipdense-tiny-rn', 'clipdense-tiny-vit16'
VICTIM_BYTES = b'precious data that must survive' * 4


class SetstateWriter(nn.Module):
    """Its TorchScript ``__setstate__`` (run by ``torch.jit.load``)
    overwrites the first 16 bytes of ``self.path`` with 'B'."""

    def __init__(self, path: str):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3))
        self.path = path

    def forward(self, x):
        return x * self.weight

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, str, bool]:
        return (self.weight, self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, str, bool]) -> None:
        self.path = state[1]
        self.training = state[2]
        t = torch.from_file(state[1], True, 16, dtype=torch.uint8)
        t.fill_(66)
        # use the result, or the compiler drops the call
        self.weight = state[0] + 0.0 * t.float().sum()


class Outer(nn.Module):

    def __init__(self, path):
        super().__init__()
        self.visual = SetstateWriter(path)
        self.proj = nn.Linear(3, 2)

    def forward(self, x):
        return self.proj(self.visual(x))


def _jit_save(module, path):
    with warnings.catch_warnings():  # jit deprecation notices
        warnings.simplefilter('ignore')
        torch.jit.save(torch.jit.script(module), path)


def _jit_load_state_dict(path):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return torch.jit.load(path, map_location='cpu').state_dict()


def _replace_record(src, dst, suffix, data: bytes):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for info in zin.infolist():
            body = data if info.filename.endswith(suffix) else zin.read(info)
            zout.writestr(info, body)


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / 'victim.bin'
    path.write_bytes(VICTIM_BYTES)
    return path


@pytest.fixture
def setstate_archive(tmp_path, victim):
    path = str(tmp_path / 'RN50.pt')
    _jit_save(Outer(str(victim)), path)
    return path


@pytest.fixture
def global_archive(tmp_path, victim):
    """A TorchScript archive whose data.pkl calls a non-allow-listed global
    (``os.system``) that would overwrite the victim."""
    good = str(tmp_path / 'good.pt')
    _jit_save(nn.Linear(2, 2), good)

    class Call:

        def __reduce__(self):
            return (os.system, (f'printf BBBBBBBBBBBBBBBB | dd of={victim} '
                                'conv=notrunc 2>/dev/null',))

    path = str(tmp_path / 'ViT-B-16.pt')
    _replace_record(good, path, '/data.pkl', pickle.dumps(Call(), protocol=2))
    assert is_torchscript_archive(path)
    return path


def test_the_crafted_archive_is_hostile_under_jit_load(setstate_archive,
                                                       victim):
    """The premise: torch.jit.load runs the archive's __setstate__."""
    _jit_load_state_dict(setstate_archive)
    assert victim.read_bytes()[:16] == b'B' * 16


@pytest.mark.parametrize('which', ['setstate_archive', 'global_archive'])
def test_every_route_refuses_without_running_the_archive(
        which, request, victim, tmp_path, monkeypatch):
    monkeypatch.delenv('CLIPDENSE_TRUST_CHECKPOINTS', raising=False)
    path = request.getfixturevalue(which)
    calls = []
    real_jit_load = torch.jit.load
    monkeypatch.setattr(torch.jit, 'load',
                        lambda *a, **k: calls.append(a) or real_jit_load(*a, **k))
    from clipdense.models.backbones import (OpenCLIPResNet,
                                            TimmViTPatchTokens)
    from clipdense.models.text_encoders import OpenCLIPTextEncoder

    # the reader itself
    with pytest.raises(UnsafeTorchScriptError):
        read_torchscript_state_dict(path)
    # pretrained= of image backbones and text encoders
    with pytest.raises(UnsafeTorchScriptError, match='trust_torchscript=True'):
        load_weight_file(path)
    with pytest.raises(UnsafeTorchScriptError, match='--trust-checkpoint'):
        OpenCLIPResNet(RN, pretrained=path)
    with pytest.raises(UnsafeTorchScriptError):
        OpenCLIPTextEncoder(VIT16, pretrained=path)
    # a tag whose cached file was replaced (pretrained='openai' -> RN50.pt)
    cache = tmp_path / 'clip'
    cache.mkdir()
    (cache / 'RN50.pt').write_bytes(open(path, 'rb').read())
    monkeypatch.setenv('CLIPDENSE_WEIGHTS_DIR', str(cache))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(UnsafeTorchScriptError):
        OpenCLIPResNet('RN50', pretrained='openai')
    # runner checkpoints (load_from, --resume, tools/test.py, the demo),
    # safe_torch_load users (prompt weights, ContrastiveCLIP, zero-shot)
    with pytest.raises(UnsafeCheckpointError, match='CLIPDENSE_TRUST_CHECKPOINTS'):
        _load_checkpoint(path, map_location='cpu')
    with pytest.raises(UnsafeCheckpointError):
        safe_torch_load(path)
    with open(path, 'rb') as f:  # a stream as well as a path
        with pytest.raises(UnsafeCheckpointError):
            safe_torch_load(io.BytesIO(f.read()))
    # timm patch-token backbones
    with pytest.raises(UnsafeCheckpointError):
        TimmViTPatchTokens('vit_tiny_patch16_224', pretrained=path)
    # the image-index cache is an npz read without pickle: ignored, rebuilt
    from clipdense.models.reco.image_index import ImageIndex
    index = ImageIndex.__new__(ImageIndex)
    index.cache_file = path
    with pytest.warns(UserWarning, match='unreadable image index'):
        assert index._load_cache() is None

    assert not calls, 'torch.jit.load was called'
    assert victim.read_bytes() == VICTIM_BYTES, 'the archive ran code'


def test_trusted_archives_still_load_through_jit_on_request(
        setstate_archive, victim, monkeypatch):
    monkeypatch.delenv('CLIPDENSE_TRUST_CHECKPOINTS', raising=False)
    with pytest.warns(UserWarning, match='runs code'):
        sd, is_openai = load_weight_file(setstate_archive, trust_torchscript=True)
    assert is_openai and set(sd) == {'visual.weight', 'proj.weight', 'proj.bias'}
    assert victim.read_bytes()[:16] == b'B' * 16  # it did run: opt-in only
    victim.write_bytes(VICTIM_BYTES)
    monkeypatch.setenv('CLIPDENSE_TRUST_CHECKPOINTS', '1')
    with pytest.warns(UserWarning, match='runs its code'):
        assert set(safe_torch_load(setstate_archive)) == set(sd)
    # an explicit False wins over the environment
    with pytest.raises(UnsafeTorchScriptError):
        load_weight_file(setstate_archive, trust_torchscript=False)


def _tiny_openai_clip(arch):
    torch.manual_seed(3)
    model = open_clip.create_model(arch, force_quick_gelu=True).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model


@pytest.mark.parametrize('arch', [RN, VIT16])
@pytest.mark.parametrize('how', ['trace', 'script'])
def test_genuine_clip_archive_reads_to_jit_state_dict(arch, how, tmp_path,
                                                      monkeypatch):
    """A tiny CLIP in OpenAI's layout (the keys open_clip's OpenAI loader
    expects), saved with torch.jit.save: same keys, values, dtypes and
    strides as torch.jit.load(...).state_dict(), without TorchScript."""
    model = _tiny_openai_clip(arch)
    assert 'positional_embedding' in model.state_dict()  # OpenAI layout
    path = str(tmp_path / f'{arch}.pt')
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if how == 'trace':
            x = torch.randn(1, 3, size, size)
            tokens = open_clip.get_tokenizer(arch)(['a cat'])
            archive = torch.jit.trace_module(
                model, dict(encode_image=(x, ), encode_text=(tokens, )),
                check_trace=False)
        else:
            archive = torch.jit.script(model)
        torch.jit.save(archive, path)
    ref = _jit_load_state_dict(path)

    def no_jit(*args, **kwargs):
        raise AssertionError('torch.jit.load must not be used')

    monkeypatch.setattr(torch.jit, 'load', no_jit)
    sd = read_torchscript_state_dict(path)
    assert list(sd) == list(ref)
    for k, v in ref.items():
        assert sd[k].dtype == v.dtype and sd[k].stride() == v.stride(), k
        assert torch.equal(sd[k], v), k
    own = model.state_dict()
    for k, v in own.items():
        if k in sd:
            assert torch.equal(sd[k], v), k
    # what clipdense loads from it is exactly the model's state dict
    weights, is_openai = load_weight_file(path)
    assert is_openai and set(weights) == set(own)
    fresh = open_clip.create_model(arch, force_quick_gelu=True).eval()
    fresh.load_state_dict(weights, strict=True)
    tokens = open_clip.get_tokenizer(arch)(['a cat', 'grass'])
    with torch.no_grad():
        assert torch.equal(fresh.encode_text(tokens), model.encode_text(tokens))


def test_damaged_archives_give_clear_errors(tmp_path):
    good = str(tmp_path / 'good.pt')
    _jit_save(nn.Linear(2, 3), good)
    data = open(good, 'rb').read()
    cut = tmp_path / 'cut.pt'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match='cut.pt: not a complete zip'):
        read_torchscript_state_dict(str(cut))
    # a storage record shorter than the tensor it backs
    short = str(tmp_path / 'short.pt')
    _replace_record(good, short, '/data/0', b'\0' * 4)
    with pytest.raises(ValueError, match='data/0 holds 4 bytes, 24 expected'):
        read_torchscript_state_dict(short)
    # a root that is not a module
    plain = str(tmp_path / 'plain.pt')
    _replace_record(good, plain, '/data.pkl', pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match='not a TorchScript module'):
        read_torchscript_state_dict(plain)
    sd = read_torchscript_state_dict(good)
    assert set(sd) == {'weight', 'bias'}
    assert np.allclose(sd['weight'].numpy(), _jit_load_state_dict(good)['weight'].numpy())
