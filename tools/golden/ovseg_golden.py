"""Golden outputs of the authors' OVSeg code (Liang et al., CVPR 2023) for
clipdense's tests: masked crops, mask prompts, the ensemble.

    python tools/golden/ovseg_golden.py --ovseg-root /path/to/ov-seg \
        [--out tests/data/golden/ovseg]

The authors' code is imported from the checkout at run time and never
copied; it needs detectron2 and OpenAI's ``clip`` package only for parts
these outputs do not use, so those imports are stubbed:

- ``detectron2.utils.comm`` (rank 0, no-op barrier) and
  ``detectron2.structures.BitMasks``, whose ``get_bounding_boxes`` is
  restated here (detectron2's rule: ``x0, y0`` = first column / row of the
  mask, ``x1, y1`` = last + 1, as float);
- ``clip`` (``third_party/CLIP/clip``'s package entry: tokenizer and
  ``clip.load``), which raises if called.

What is run, from the checkout:

- ``open_vocab_seg/modeling/clip_adapter/adapter.py``:
  ``MaskFormerClipAdapter._preprocess_image`` (threshold, tight box,
  ``crop_with_mask`` with the CLIP-mean fill, normalisation, bicubic resize
  to 224, nearest-resized crop masks) on a fixed image and soft masks;
- ``third_party/CLIP/clip/model.py``: ``VisionTransformer`` with mask prompts
  (depth 3) at tiny widths with seeded random weights, on fixed crops and
  masks;
- ``open_vocab_seg/ovseg_model.py``: ``OVSeg.semantic_inference`` (its
  source is taken from the file and executed on its own, with the CLIP
  adapter replaced by fixed CLIP logits) for lambda 0.7 and 0.6, with an
  empty proposal.

Outputs (safetensors, small; ``clip_layout.json``: the key names and shapes
of the authors' whole CLIP at tiny widths, for the converter's test): ``crops.safetensors`` (224x224 regions sampled
every 4th pixel, their crop masks every 2nd, and full sums), ``mpt.safetensors`` (weights, inputs
and embeddings), ``ensemble.safetensors``; ``meta.json`` records the
checkout's commit when it is a git repository.
"""
import argparse
import ast
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import types
from types import SimpleNamespace

import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
STRIDE = 4  # sampling of the 224x224 regions stored
# the tiny ViT of the mask-prompt outputs (= clipdense-tiny-vit16 with QuickGELU)
TINY_VIT = dict(input_resolution=64, patch_size=16, width=32, layers=4, heads=2,
                output_dim=32)
PROMPT_DEPTH = 3


def _bounding_boxes(masks: torch.Tensor) -> torch.Tensor:
    """detectron2's ``BitMasks.get_bounding_boxes`` rule (see the docstring)."""
    boxes = torch.zeros(masks.shape[0], 4, dtype=torch.float32)
    x_any = torch.any(masks, dim=1)
    y_any = torch.any(masks, dim=2)
    for i in range(masks.shape[0]):
        x = torch.where(x_any[i, :])[0]
        y = torch.where(y_any[i, :])[0]
        if len(x) > 0 and len(y) > 0:
            boxes[i, :] = torch.as_tensor([x[0], y[0], x[-1] + 1, y[-1] + 1],
                                          dtype=torch.float32)
    return boxes


class _BitMasks:
    def __init__(self, tensor):
        self.tensor = tensor.bool()

    def get_bounding_boxes(self):
        return _bounding_boxes(self.tensor)


def _install_stubs():
    def mod(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    def _unavailable(*a, **k):
        raise RuntimeError('stubbed by ovseg_golden.py: not available')

    d2 = mod('detectron2')
    d2.utils = mod('detectron2.utils')
    d2.utils.comm = mod('detectron2.utils.comm', get_local_rank=lambda: 0,
                        synchronize=lambda: None)
    d2.structures = mod('detectron2.structures', BitMasks=_BitMasks)
    mod('clip', tokenize=_unavailable, load=_unavailable)


def _load_package(name: str, path: str):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(path, '__init__.py'), submodule_search_locations=[path])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules[name] = pkg
    spec.loader.exec_module(pkg)
    return pkg


def _load_file(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m


def _function_from_source(path: str, cls: str, fn: str, namespace: dict):
    """Compile one method of a class of the authors' file on its own."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == fn:
                    module = ast.Module(body=[item], type_ignores=[])
                    exec(compile(module, path, 'exec'), namespace)
                    return namespace[fn]
    raise ValueError(f'{cls}.{fn} not found in {path}')


def crops_outputs(root: str) -> dict:
    _install_stubs()
    base = osp.join(root, 'open_vocab_seg', 'modeling', 'clip_adapter')
    # the package's __init__ imports the adapter and the text templates
    adapter = _load_package('ovseg_clip_adapter', base)
    adapter_mod = sys.modules['ovseg_clip_adapter.adapter']
    g = torch.Generator().manual_seed(0)
    h, w = 40, 52
    image = torch.randint(0, 256, (3, h, w), generator=g).float()
    probs = torch.full((5, h, w), 0.1)
    probs[0, 5:30, 8:20] = 0.9  # a box
    probs[1, 20:38, 30:50] = 0.6
    probs[1, 25:32, 35:42] = 0.2  # with a hole
    probs[2, 0:10, 0:52] = 0.45  # above the threshold 0.4 only
    probs[3, 12:14, 40:41] = 0.95  # a thin sliver
    # probs[4] stays below the threshold: an empty proposal
    fake = SimpleNamespace(
        mask_thr=0.4, mask_matting=False, mask_fill=[255.0 * c for c in CLIP_MEAN],
        mask_expand_ratio=1.0, region_resized=True,
        pixel_mean=torch.tensor(CLIP_MEAN).reshape(1, 3, 1, 1) * 255.0,
        pixel_std=torch.tensor(CLIP_STD).reshape(1, 3, 1, 1) * 255.0)
    (regions, unnorm), region_masks, valid = \
        adapter_mod.MaskFormerClipAdapter._preprocess_image(fake, image, probs, normalize=True)
    del adapter
    return dict(image=image, probs=probs, mask_thr=torch.tensor(0.4), valid=valid,
                regions_sampled=regions[:, :, ::STRIDE, ::STRIDE].contiguous(),
                regions_sum=regions.double().sum(dim=(1, 2, 3)),
                unnorm_regions_sum=unnorm.double().sum(dim=(1, 2, 3)),
                region_masks_sampled=region_masks[:, 0, ::2, ::2].to(torch.uint8).contiguous(),
                stride=torch.tensor(STRIDE))


def mpt_outputs(root: str) -> dict:
    model = _load_file('ovseg_clip_model', osp.join(root, 'third_party', 'CLIP', 'clip',
                                                     'model.py'))
    torch.manual_seed(0)
    vit = model.VisionTransformer(mask_prompt_depth=PROMPT_DEPTH, **TINY_VIT)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in vit.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        vit.mask_embedding.copy_(torch.randn(vit.mask_embedding.shape, generator=g))
    vit.eval()
    n, s = 3, TINY_VIT['input_resolution']
    x = torch.randn(n, 3, s, s, generator=g)
    masks = torch.zeros(n, 1, s, s)
    masks[0, :, 4:30, 10:50] = 1  # patches fully outside: prompts
    masks[1, :, 17:18, 33:34] = 1  # one pixel: one patch kept
    masks[2] = 1  # everything kept
    with torch.no_grad():
        with_prompts = vit(x, masks)
        without = vit(x)
    state = {k: v.detach().clone().contiguous() for k, v in vit.state_dict().items()}
    out = {f'weight.{k}': v for k, v in state.items()}
    out.update(inputs=x, masks=masks[:, 0].contiguous(), embed_prompts=with_prompts,
               embed_plain=without, prompt_depth=torch.tensor(PROMPT_DEPTH))
    return out


# the authors' whole CLIP at tiny widths, for its key layout (names, shapes)
TINY_CLIP = dict(embed_dim=32, image_resolution=64, vision_layers=2, vision_width=64,
                 vision_patch_size=16, mask_prompt_depth=PROMPT_DEPTH, context_length=77,
                 vocab_size=49408, transformer_width=32, transformer_heads=2,
                 transformer_layers=2)


def clip_layout(root: str) -> dict:
    """``{key: shape}`` of the authors' CLIP (``third_party/CLIP``) state
    dict at :data:`TINY_CLIP` widths."""
    model = sys.modules.get('ovseg_clip_model') or _load_file(
        'ovseg_clip_model', osp.join(root, 'third_party', 'CLIP', 'clip', 'model.py'))
    clip = model.CLIP(**TINY_CLIP)
    return dict(config=TINY_CLIP,
                keys={k: list(v.shape) for k, v in clip.state_dict().items()})


def ensemble_outputs(root: str) -> dict:
    fn = _function_from_source(osp.join(root, 'open_vocab_seg', 'ovseg_model.py'), 'OVSeg',
                               'semantic_inference', dict(torch=torch, F=F))
    g = torch.Generator().manual_seed(2)
    q, k, h, w = 6, 4, 5, 7
    mask_cls = torch.randn(q, k + 1, generator=g) * 3
    mask_pred = torch.randn(q, h, w, generator=g) * 4
    valid = torch.tensor([True, True, False, True, True, False])
    clip_logits = torch.randn(int(valid.sum()), k + 1, generator=g) * 5
    out = dict(mask_cls=mask_cls, mask_pred=mask_pred, valid=valid, clip_logits=clip_logits)
    for lam in (0.7, 0.6):
        fake = SimpleNamespace(
            clip_ensemble=True, clip_ensemble_weight=lam, device=torch.device('cpu'),
            clip_adapter=lambda image, names, mp, normalize=True: (clip_logits, None, valid))
        semseg, _ = fn(fake, mask_cls, mask_pred, None, ['a'] * k)
        out[f'semseg_{int(lam * 100)}'] = semseg
    return out


def _commit(root):
    try:
        return subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return None


def main(argv=None):
    here = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--ovseg-root', required=True, help="a checkout of the authors' ov-seg")
    p.add_argument('--out', default=osp.join(here, 'tests', 'data', 'golden', 'ovseg'))
    p.add_argument('--commit', default=None,
                   help='the checkout\'s commit, when it is not a git repository')
    args = p.parse_args(argv)
    if not osp.isfile(osp.join(args.ovseg_root, 'open_vocab_seg', 'ovseg_model.py')):
        raise SystemExit(f'{args.ovseg_root} is not an ov-seg checkout '
                         '(open_vocab_seg/ovseg_model.py missing)')
    from safetensors.torch import save_file
    os.makedirs(args.out, exist_ok=True)
    outputs = dict(crops=crops_outputs(args.ovseg_root), mpt=mpt_outputs(args.ovseg_root),
                   ensemble=ensemble_outputs(args.ovseg_root))
    for name, tensors in outputs.items():
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        path = osp.join(args.out, f'{name}.safetensors')
        save_file(tensors, path)
        print(f'{path}: {len(tensors)} tensors, {osp.getsize(path) // 1024} KiB')
    meta = dict(source='facebookresearch/ov-seg',
                commit=args.commit or _commit(args.ovseg_root),
                command='python tools/golden/ovseg_golden.py --ovseg-root PATH')
    with open(osp.join(args.out, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    with open(osp.join(args.out, 'clip_layout.json'), 'w') as f:
        json.dump(clip_layout(args.ovseg_root), f, indent=0, sort_keys=True)


if __name__ == '__main__':
    main()
