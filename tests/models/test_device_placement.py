"""Every device choice is explicit (issue 26.6: no GPU has run clipdense).

1. A static check: outside constructors and weight initialisers, no tensor
   factory (``torch.zeros``, ``torch.arange``, ``torch.tensor`` ...) in
   ``clipdense/`` is called without ``device=``, except in the few functions
   listed below with the reason their tensors are on the CPU by design; and
   nothing calls ``.cuda()`` or names ``'cuda'`` as a device.
2. Models run with their weights and inputs on PyTorch's ``meta`` device: a
   tensor created on the CPU inside a forward pass meets a meta tensor and
   fails exactly as it would meet a CUDA tensor.
"""
import ast
import os.path as osp
import pathlib

import pytest
import torch

import clipdense

PACKAGE = pathlib.Path(osp.dirname(clipdense.__file__))
FACTORIES = {
    'zeros', 'ones', 'arange', 'empty', 'tensor', 'randn', 'rand', 'full',
    'eye', 'linspace', 'logspace', 'randint', 'randperm', 'as_tensor',
    'empty_strided', 'scalar_tensor', 'tril_indices', 'triu_indices'
}
# parameters and buffers made here move with the module's .to()
INIT_FUNCTIONS = ('__init__', 'init_weights', 'reset_parameters')
CPU_BY_DESIGN = {
    ('models/utils/label_argmax.py', '_tiles'):
    'resize axes are analysed on the CPU (bilinear_argmax passes a.cpu())',
    ('models/utils/label_argmax.py', '_lerp_axis'): 'same',
    ('models/utils/label_argmax.py', '_general_axis'): 'same',
}


def implicit_device_calls(package=PACKAGE):
    found = []
    for path in sorted(package.rglob('*.py')):
        rel = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))

        def visit(node, funcs):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                 ast.ClassDef)):
                funcs = funcs + [node.name]
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Attribute) and isinstance(
                        f.value, ast.Name) and f.value.id == 'torch' and \
                        f.attr in FACTORIES and not any(
                            k.arg == 'device' for k in node.keywords):
                    in_init = any(fn in INIT_FUNCTIONS or fn.startswith('_init')
                                  for fn in funcs)
                    allowed = funcs and (rel, funcs[-1]) in CPU_BY_DESIGN
                    if not in_init and not allowed:
                        found.append(f'{rel}:{node.lineno} torch.{f.attr} in '
                                     f'{".".join(funcs) or "<module>"}')
                if isinstance(f, ast.Attribute) and f.attr == 'cuda' and \
                        not node.args and not node.keywords:
                    found.append(f'{rel}:{node.lineno} .cuda()')
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.startswith('cuda:'):
                found.append(f'{rel}:{node.lineno} {node.value!r}')
            for child in ast.iter_child_nodes(node):
                visit(child, funcs)

        visit(tree, [])
    return found


def test_no_tensor_is_created_without_a_device():
    found = implicit_device_calls()
    assert not found, ('tensors created without device= (pass the input\'s '
                       'device, or device=\'cpu\' where the CPU is meant):\n'
                       + '\n'.join(found))


def test_the_static_check_catches_an_implicit_device(tmp_path):
    """The check is not vacuous: a file with an implicit device is found."""
    pkg = tmp_path / 'pkg'
    (pkg / 'models').mkdir(parents=True)
    (pkg / 'models' / 'bad.py').write_text(
        'import torch\n'
        'class M:\n'
        '    def __init__(self):\n'
        '        self.ok = torch.zeros(3)\n'
        '    def forward(self, x):\n'
        '        return x + torch.arange(x.shape[0])\n'
        '    def fine(self, x):\n'
        '        return torch.ones(2, device=x.device), x.cuda(0)\n'
        '    def bad(self, x):\n'
        "        return x.cuda(), 'cuda:1'\n")
    found = implicit_device_calls(pkg)
    assert found == ['models/bad.py:6 torch.arange in M.forward',
                     'models/bad.py:10 .cuda()',
                     "models/bad.py:10 'cuda:1'"]


# --------------------------------------------------------------- meta device
def _meta(module):
    return module.to_empty(device='meta').eval()


def test_clip_towers_and_text_encoders_on_meta():
    from clipdense.models.backbones import OpenCLIPResNet, OpenCLIPViT
    from clipdense.models.text_encoders import (OpenCLIPContextTextEncoder,
                                                OpenCLIPTextEncoder)
    from clipdense.testing import register_tiny_models
    register_tiny_models()
    x = torch.empty(2, 3, 64, 64, device='meta')
    for bb in (OpenCLIPResNet('clipdense-tiny-rn', joint_outputs=('global', 'dense')),
               OpenCLIPViT('clipdense-tiny-vit16', joint_outputs=('global', 'dense'))):
        outs = _meta(bb)(x)
        assert all(o.device.type == 'meta' for o in outs[:-1])
        assert all(v.device.type == 'meta' for v in outs[-1].values())
    te = _meta(OpenCLIPTextEncoder('clipdense-tiny-rn'))
    tokens = torch.zeros(3, 77, dtype=torch.long, device='meta')
    assert te.encode_text(tokens).device.type == 'meta'
    ce = _meta(OpenCLIPContextTextEncoder('clipdense-tiny-rn', num_contexts=4))
    ctx = torch.empty(2, 4, ce.token_embed_dim, device='meta')
    out = ce(['ball', 'cup|mug', 'sky'], ctx)
    assert out.device.type == 'meta'


def _no_weights(cfg):
    """The config without weight files (random initialisation)."""
    if isinstance(cfg, dict):
        return {k: (None if k == 'pretrained' and isinstance(v, str)
                    else _no_weights(v)) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_no_weights(v) for v in cfg)
    return cfg


@pytest.mark.parametrize('config', [
    'configs/denseclip/denseclip_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py',
    'configs/quickstart/fpn_clip-synth-rn_1xb8-1k_synthetic-flat-128x128.py',
    'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py',
    'configs/ovseg/ovseg_clip-synth-rn_1xb4-400_synthetic-seen-128x128.py',
])
def test_segmentors_forward_on_meta(config):
    """mode='tensor' (the network without data-dependent post-processing)
    of whole segmentors, weights and inputs on ``meta``."""
    from mmengine.config import Config

    from clipdense.registry import MODELS
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, config))
    model_cfg = _no_weights(cfg.model.to_dict())
    model = _meta(MODELS.build(model_cfg))
    x = torch.empty(2, 3, 64, 64, device='meta')
    out = model(x, None, mode='tensor')
    outs = out if isinstance(out, (tuple, list)) else [out]
    assert outs and all(o.device.type == 'meta' for o in outs
                        if torch.is_tensor(o))
