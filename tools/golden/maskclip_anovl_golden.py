"""Golden outputs of the authors' MaskCLIP and AnoVL code (issue 21).

Writes small safetensors fixtures that ``tests/models/test_golden_maskclip_anovl.py``
compares clipdense with::

    python tools/golden/maskclip_anovl_golden.py \
        --maskclip-root /path/to/MaskCLIP --anovl-root /path/to/AnoVL

How they are made
-----------------
Nothing of the authors' code is committed: it is imported at run time from
the two checkouts (``git clone`` of chongzhou96/MaskCLIP and hq-deng/AnoVL).
The fixtures were made from

* chongzhou96/MaskCLIP @ ``245d31f809be9c1938f8f30561b6bf9ed033d746``
* hq-deng/AnoVL @ ``3a70bfdaea6baf1eeb140c5de8155b535bd94833``

Weights are not stored either: the authors' model and clipdense's fill the
same open_clip parameter names from one seeded generator
(:func:`clipdense.testing.golden.fill_seeded`, loaded here by file path), at
tiny widths (``clipdense/testing/model_configs/clipdense-tiny-vit16-12l.json``:
width 32, 12 blocks - AnoVL's code hard-codes 12 - patch 16, 64 px;
``clipdense-tiny-rn``: CLIP ResNet width 8, one block per stage).

The script runs itself twice, one part per process:

``--part maskclip`` (MaskCLIP's mmseg 0.20 fork): mmcv 1.x / mmseg 0.x
imports are stubbed with fake modules in ``sys.modules`` (``mmcv.runner``
-> mmengine, registries -> no-ops, ``BaseDecodeHead`` -> a minimal class
holding ``in_index``); ``mmcv.cnn``'s ``build_norm_layer``, ``FFN``,
``MultiheadAttention`` are the installed mmcv 2.x ones (same computation as
1.x). Loaded from the checkout: ``mmseg/models/backbones/vit.py`` and
``resnet.py``, ``mmseg/models/utils/{embed,res_layer}.py``,
``mmseg/ops/wrappers.py``, ``mmseg/models/decode_heads/maskclip_head.py``
and ``tools/maskclip_utils/prompt_engineering.py`` (with an ``openai/clip``
stand-in: ``clip.load`` gives the seeded open_clip model, ``clip.tokenize``
open_clip's tokenizer, ``.cuda()`` a no-op). The authors' ViT is built as
``configs/_base_/models/maskclip_vit16.py`` (exact GELU, LN eps 1e-6) with
CLIP weights mapped as their ``convert_clip_weights.py`` does; the ResNet as
``ResNetClip`` with ``arch_settings`` patched to one block per stage. Fixed
inputs (``torch.manual_seed(0)``), a 96x64 image for the ViT (so the
positional table is resized) and 64x64 for the ResNet.

``--part anovl`` (AnoVL): the checkout goes first on ``sys.path`` so that
``open_clip`` is the authors' patched fork; ``vl_test.py`` is imported
(``skimage`` / ``tabulate`` stubbed when missing: they are only used by its
metrics) for ``loss_func``, ``weight_reset``, ``resize_tokens``;
``model.LinearLayer`` / ``TextAdapter``, ``prompt_ensemble`` and
``utils.aug`` (needs ``kornia``; ``--extra-path`` adds a folder with it)
are the authors'. Two 64x64 ``bottle`` images run the steps of
``vl_test.py``'s loop: image score over the 22 views, training-free map,
then the test-time adaptation (5 steps, one ``TextAdapter`` and one AdamW
for the class, ``weight_reset`` per image). The loop body is driven here
(``test()`` needs the datasets), in the authors' order except that the
views of both images are made first and ``torch.manual_seed(seed)`` is
called just before the first image's adaptation: then the weight resets and
the noise are the only draws from the generator, as with clipdense's
``rng_scope='run'``.

Outputs (float32): ``tests/data/golden/maskclip/maskclip_golden.safetensors``
and ``tests/data/golden/anovl/anovl_golden.safetensors``, with the commits,
seeds, sizes and parameter names in their metadata.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import logging
import os
import os.path as osp
import subprocess
import sys
import types

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MASKCLIP_COMMIT = '245d31f809be9c1938f8f30561b6bf9ed033d746'
ANOVL_COMMIT = '3a70bfdaea6baf1eeb140c5de8155b535bd94833'
VIT_ARCH = 'clipdense-tiny-vit16-12l'
RN_ARCH = 'clipdense-tiny-rn'
WEIGHT_SEED = 0
INPUT_SEED = 0
TTA_SEED = 10  # vl_test.py's default --seed
MASKCLIP_CLASSES = ('airplane', 'dining table', 'potted plant')
ANOVL_CLASS = 'bottle'


def _load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _module(name, **attrs):
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _package(name, **attrs):
    mod = _module(name, **attrs)
    mod.__path__ = []
    return mod


def _golden_helpers():
    return _load_file('_clipdense_golden', osp.join(ROOT, 'clipdense', 'testing', 'golden.py'))


def _model_cfg(arch):
    with open(osp.join(ROOT, 'clipdense', 'testing', 'model_configs', arch + '.json')) as f:
        return json.load(f)


def _git_commit(root):
    try:
        return subprocess.check_output(['git', '-C', root, 'rev-parse', 'HEAD'],
                                       text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:  # an exported tree, not a clone
        return None


def _save(path, tensors, meta):
    from safetensors.torch import save_file
    os.makedirs(osp.dirname(path), exist_ok=True)
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, path,
              metadata={k: json.dumps(v) for k, v in meta.items()})
    print(f'wrote {path} ({osp.getsize(path)} bytes, {len(tensors)} tensors)')


# ----------------------------------------------------------------------
# MaskCLIP
# ----------------------------------------------------------------------
def _stub_mmcv_mmseg(root):
    import torch
    from torch import nn
    import mmcv.cnn  # noqa: F401  (real mmcv 2.x: build_norm_layer & co.)
    import mmcv.cnn.bricks.transformer  # noqa: F401  (FFN, MultiheadAttention)
    import mmcv.utils
    import mmengine.model as em
    from mmengine.logging import print_log
    from mmengine.model import weight_init
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmengine.utils import to_2tuple

    def passthrough(*a, **k):
        return lambda f: f

    _module('mmcv.runner', BaseModule=em.BaseModule, ModuleList=em.ModuleList,
            Sequential=em.Sequential, _load_checkpoint=_load_checkpoint,
            auto_fp16=passthrough, force_fp32=passthrough)
    _module('mmcv.runner.base_module', BaseModule=em.BaseModule)
    _module('mmcv.cnn.utils.weight_init', constant_init=weight_init.constant_init,
            kaiming_init=weight_init.kaiming_init, trunc_normal_=weight_init.trunc_normal_)
    mmcv.utils.print_log = print_log
    mmcv.utils.to_2tuple = to_2tuple
    _module('mmcv.utils.parrots_wrapper', _BatchNorm=nn.modules.batchnorm._BatchNorm)

    class _Registry:
        def register_module(self, *a, **k):
            return lambda cls: cls

    class BaseDecodeHead(nn.Module):
        """Stand-in for mmseg 0.x's BaseDecodeHead: what MaskClipHead uses."""

        def __init__(self, in_channels, channels, *, num_classes, in_index=-1, **kwargs):
            super().__init__()
            self.in_channels = in_channels
            self.channels = channels
            self.num_classes = num_classes
            self.in_index = in_index

        def init_weights(self):
            pass

        def _transform_inputs(self, inputs):
            return inputs[self.in_index]

    _package('mmseg')
    _module('mmseg.utils', get_root_logger=lambda *a, **k: logging.getLogger('maskclip'))
    ops = _package('mmseg.ops')
    wrappers = _load_file('mmseg.ops.wrappers', osp.join(root, 'mmseg', 'ops', 'wrappers.py'))
    ops.resize = wrappers.resize
    _package('mmseg.models')
    reg = _Registry()
    _module('mmseg.models.builder', BACKBONES=reg, HEADS=reg)
    utils = _package('mmseg.models.utils')
    embed = _load_file('mmseg.models.utils.embed',
                       osp.join(root, 'mmseg', 'models', 'utils', 'embed.py'))
    res_layer = _load_file('mmseg.models.utils.res_layer',
                           osp.join(root, 'mmseg', 'models', 'utils', 'res_layer.py'))
    utils.PatchEmbed = embed.PatchEmbed
    utils.ResLayer = res_layer.ResLayer
    _package('mmseg.models.backbones')
    _package('mmseg.models.decode_heads')
    _module('mmseg.models.decode_heads.decode_head', BaseDecodeHead=BaseDecodeHead)
    vit = _load_file('mmseg.models.backbones.vit',
                     osp.join(root, 'mmseg', 'models', 'backbones', 'vit.py'))
    resnet = _load_file('mmseg.models.backbones.resnet',
                        osp.join(root, 'mmseg', 'models', 'backbones', 'resnet.py'))
    head = _load_file('mmseg.models.decode_heads.maskclip_head',
                      osp.join(root, 'mmseg', 'models', 'decode_heads', 'maskclip_head.py'))
    return vit, resnet, head, torch


def _vit_to_mmseg(sd, prefix='visual.'):
    """CLIP ViT keys -> the authors' mmseg ViT (convert_clip_weights.py's map)."""
    out = {}
    for k, v in sd.items():
        if not k.startswith(prefix):
            continue
        k = k[len(prefix):]
        if k == 'proj':
            continue
        if k == 'class_embedding':
            out['cls_token'] = v.reshape(1, 1, -1)
            continue
        if k == 'positional_embedding':
            out['pos_embed'] = v[None]
            continue
        k = k.replace('conv1.weight', 'patch_embed.projection.weight')
        k = k.replace('ln_pre.', 'ln0.').replace('ln_post.', 'ln1.')
        k = k.replace('transformer.resblocks.', 'layers.')
        k = k.replace('.ln_1.', '.ln1.').replace('.ln_2.', '.ln2.')
        k = k.replace('.mlp.c_fc.', '.ffn.layers.0.0.').replace('.mlp.c_proj.', '.ffn.layers.1.')
        k = k.replace('.attn.', '.attn.attn.')
        out[k] = v
    return out


def _copy_resnet(src, dst):
    """open_clip ModifiedResNet -> the authors' ResNetClip (deep stem,
    avg-down), module by module in order."""
    import torch
    from torch import nn

    def leaves(m):
        return [x for x in m.modules() if isinstance(x, (nn.Conv2d, nn.BatchNorm2d))]

    s_stem = [src.conv1, src.bn1, src.conv2, src.bn2, src.conv3, src.bn3]
    d_stem = [x for x in dst.stem if isinstance(x, (nn.Conv2d, nn.BatchNorm2d))]
    pairs = list(zip(s_stem, d_stem))
    for i in range(1, 5):
        for sb, db in zip(getattr(src, f'layer{i}'), getattr(dst, f'layer{i}')):
            s_main = [sb.conv1, sb.bn1, sb.conv2, sb.bn2, sb.conv3, sb.bn3]
            d_main = [db.conv1, db.norm1, db.conv2, db.norm2, db.conv3, db.norm3]
            pairs += list(zip(s_main, d_main))
            s_ds = leaves(sb.downsample) if sb.downsample is not None else []
            d_ds = leaves(db.downsample) if db.downsample is not None else []
            assert len(s_ds) == len(d_ds), (s_ds, d_ds)
            pairs += list(zip(s_ds, d_ds))
    with torch.no_grad():
        for s, d in pairs:
            assert type(s) is type(d) and s.weight.shape == d.weight.shape, (s, d)
            d.load_state_dict(s.state_dict())


def run_maskclip(root, out):
    vit_mod, resnet_mod, head_mod, torch = _stub_mmcv_mmseg(root)
    import open_clip
    import tempfile
    from torch import nn
    golden = _golden_helpers()
    open_clip.add_model_config(osp.join(ROOT, 'clipdense', 'testing', 'model_configs'))
    tensors, meta = {}, {}
    tmp = tempfile.mkdtemp()

    # --- the authors' text embeddings (prompt_engineering.py)
    clip_model = open_clip.create_model(VIT_ARCH).eval()
    names = golden.fill_seeded(clip_model, WEIGHT_SEED)
    tok = open_clip.get_tokenizer(VIT_ARCH)
    _module('clip', load=lambda name, *a, **k: (clip_model, None), tokenize=tok)
    cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        pe = _load_file('maskclip_prompt_engineering',
                        osp.join(root, 'tools', 'maskclip_utils', 'prompt_engineering.py'))
        text = pe.zeroshot_classifier('ViT16', list(MASKCLIP_CLASSES),
                                      pe.prompt_templates).permute(1, 0).float()
    finally:
        torch.Tensor.cuda = cuda
    tensors['text_embeddings'] = text
    meta['num_templates'] = len(pe.prompt_templates)
    text_path = osp.join(tmp, 'text.pth')
    torch.save(text, text_path)

    load = torch.load

    def cpu_load(path, *a, **k):
        k['map_location'] = 'cpu'
        k.setdefault('weights_only', False)
        return load(path, *a, **k)

    torch.load = cpu_load
    try:
        # --- ViT (configs/_base_/models/maskclip_vit16.py at tiny width)
        cfg = _model_cfg(VIT_ARCH)
        v = cfg['vision_cfg']
        width, size, patch = v['width'], v['image_size'], v['patch_size']
        backbone = vit_mod.VisionTransformer(
            img_size=(size, size), patch_size=patch, patch_bias=False, in_channels=3,
            embed_dims=width, num_layers=v['layers'], num_heads=width // v['head_width'],
            mlp_ratio=4, out_indices=-1, qkv_bias=True, drop_rate=0., attn_drop_rate=0.,
            drop_path_rate=0., with_cls_token=True, output_cls_token=False,
            norm_cfg=dict(type='LN', eps=1e-6), act_cfg=dict(type='GELU'), patch_norm=False,
            pre_norm=True, final_norm=True, return_qkv=True, interpolate_mode='bicubic',
            num_fcs=2, norm_eval=False)
        missing = backbone.load_state_dict(_vit_to_mmseg(clip_model.state_dict()), strict=True)
        assert not missing.missing_keys and not missing.unexpected_keys, missing
        backbone.eval()
        proj_path = osp.join(tmp, 'vit_proj.pth')
        torch.save({'proj': {'weight': clip_model.visual.proj.detach().t().clone()}}, proj_path)
        torch.manual_seed(INPUT_SEED)
        img = torch.randn(2, 3, 96, 64)
        with torch.no_grad():
            outs = backbone(img)
            x, q, k, v_ = outs[-1]
        tensors['vit.input'] = img
        tensors['vit.keys'] = k  # (B, HW, C): out_proj(k_proj(LN1(x)))
        tensors['vit.value'] = v_  # (B, C, h, w) after ln_post, before proj
        variants = dict(plain=(0., 0.), ks=(1.0, 0.), pd=(0., 0.5), ks_pd=(1.0, 0.5),
                        ks_half=(0.6, 0.))
        for name, (ks, pd) in variants.items():
            head = head_mod.MaskClipHead(
                text_categories=len(MASKCLIP_CLASSES), text_channels=cfg['embed_dim'],
                text_embeddings_path=text_path, visual_projs_path=proj_path, vit=True,
                ks_thresh=ks, pd_thresh=pd, in_channels=width, channels=0,
                num_classes=len(MASKCLIP_CLASSES), in_index=-1).eval()
            with torch.no_grad():
                tensors[f'vit.logits.{name}'] = head(outs)
                if name == 'plain':
                    tensors['vit.value_joint'] = head.proj(v_)
        meta['vit_variants'] = {n: list(t) for n, t in variants.items()}

        # --- ResNet (ResNetClip + MaskClipHead(vit=False))
        rn_model = open_clip.create_model(RN_ARCH).eval()
        rn_names = golden.fill_seeded(rn_model, WEIGHT_SEED)
        rcfg = _model_cfg(RN_ARCH)
        rw = rcfg['vision_cfg']['width']
        resnet_mod.ResNet.arch_settings = {50: (resnet_mod.Bottleneck, (1, 1, 1, 1))}
        rn = resnet_mod.ResNetClip(depth=50, stem_channels=rw, base_channels=rw,
                                   out_indices=(3, ), norm_cfg=dict(type='BN'),
                                   contract_dilation=True)
        rn.eval()  # (ResNet.train returns None)
        _copy_resnet(rn_model.visual, rn)
        ap = rn_model.visual.attnpool
        projs = {n: {'weight': getattr(ap, n).weight.detach().clone(),
                     'bias': getattr(ap, n).bias.detach().clone()}
                 for n in ('q_proj', 'k_proj', 'v_proj', 'c_proj')}
        rn_proj_path = osp.join(tmp, 'rn_proj.pth')
        torch.save(projs, rn_proj_path)
        torch.manual_seed(INPUT_SEED + 1)
        rimg = torch.randn(2, 3, 64, 96)
        with torch.no_grad():
            routs = rn(rimg)
            c5 = routs[-1]
        tensors['rn.input'] = rimg
        tensors['rn.c5'] = c5
        # the text embeddings of the RN text tower
        _module('clip', load=lambda name, *a, **k: (rn_model, None), tokenize=tok)
        torch.Tensor.cuda = lambda self, *a, **k: self
        try:
            rtext = pe.zeroshot_classifier('RN50', list(MASKCLIP_CLASSES),
                                           pe.prompt_templates).permute(1, 0).float()
        finally:
            torch.Tensor.cuda = cuda
        tensors['rn.text_embeddings'] = rtext
        torch.save(rtext, text_path)
        for name, (ks, pd) in variants.items():
            head = head_mod.MaskClipHead(
                text_categories=len(MASKCLIP_CLASSES), text_channels=rcfg['embed_dim'],
                text_embeddings_path=text_path, visual_projs_path=rn_proj_path, vit=False,
                ks_thresh=ks, pd_thresh=pd, in_channels=c5.shape[1], channels=0,
                num_classes=len(MASKCLIP_CLASSES), in_index=-1).eval()
            with torch.no_grad():
                tensors[f'rn.logits.{name}'] = head(routs)
                if name == 'plain':
                    tensors['rn.value_joint'] = head.c_proj(head.v_proj(c5))
                    tensors['rn.keys'] = head.k_proj(c5)
    finally:
        torch.load = load
    meta.update(maskclip_commit=_git_commit(root) or MASKCLIP_COMMIT, weight_seed=WEIGHT_SEED,
                input_seed=INPUT_SEED, vit_arch=VIT_ARCH, rn_arch=RN_ARCH,
                classes=list(MASKCLIP_CLASSES), vit_param_names=names,
                rn_param_names=rn_names)
    _save(osp.join(out, 'maskclip', 'maskclip_golden.safetensors'), tensors, meta)


# ----------------------------------------------------------------------
# AnoVL
# ----------------------------------------------------------------------
def run_anovl(root, out):
    sys.path.insert(0, root)
    for name in ('skimage', 'tabulate'):
        try:
            __import__(name)
        except ImportError:  # only vl_test.py's metrics use them
            mod = _module(name, tabulate=lambda *a, **k: '')
            mod.measure = _module(name + '.measure')
    import torch
    import torch.nn.functional as F
    import open_clip  # the authors' fork (first on sys.path)
    assert osp.dirname(open_clip.__file__).startswith(osp.abspath(root)), open_clip.__file__
    from open_clip.model import CLIP
    golden = _golden_helpers()
    model_m = _load_file('anovl_model', osp.join(root, 'model.py'))
    pe = _load_file('anovl_prompt_ensemble', osp.join(root, 'prompt_ensemble.py'))
    utils = _load_file('anovl_utils', osp.join(root, 'utils.py'))
    vl = _load_file('anovl_vl_test', osp.join(root, 'vl_test.py'))

    cfg = _model_cfg(VIT_ARCH)
    model = CLIP(cfg['embed_dim'], cfg['vision_cfg'], cfg['text_cfg'], quick_gelu=False).eval()
    names = golden.fill_seeded(model, WEIGHT_SEED)
    tokenizer = open_clip.get_tokenizer('ViT-B-16')
    img_size = cfg['vision_cfg']['image_size']
    features_list = [3, 6, 9, 12]
    with torch.no_grad():
        text_prompts, text_prompts_list = pe.encode_text_with_prompt_ensemble(
            model, [ANOVL_CLASS], tokenizer, 'cpu')
    linearlayer = model_m.LinearLayer(cfg['vision_cfg']['width'], cfg['embed_dim'],
                                      len(features_list), 'ViT', model)
    text_features = torch.stack([text_prompts[ANOVL_CLASS]], dim=0)

    torch.manual_seed(INPUT_SEED)
    images = torch.randn(2, 1, 3, img_size, img_size)
    tensors = {'input': images[:, 0], 'text': text_prompts[ANOVL_CLASS].t(),
               'text_bank': torch.cat([text_prompts_list[ANOVL_CLASS][..., 0],
                                       text_prompts_list[ANOVL_CLASS][..., 1]])}
    scores, vv_tokens, tfa_maps = [], [], []

    def final_map(tokens):
        tokens = tokens / tokens.norm(dim=-1, keepdim=True)
        amap = torch.softmax(tokens @ text_features, dim=-1)[:, :, :, 1].unsqueeze(1)
        amap = F.pad(amap, (1, 1, 1, 1), 'replicate')
        amap = F.avg_pool2d(amap, 3, stride=1, padding=0, count_include_pad=False)
        return F.interpolate(amap, size=img_size, mode='bilinear', align_corners=True)

    patch_ln = []
    for image in images:
        # image score over the 22 views (vl_test.py)
        with torch.no_grad():
            feats, _ = model.encode_image(utils.aug(image), features_list)
            feats = feats / feats.norm(dim=-1, keepdim=True)
            probs = (feats @ text_features[0]).softmax(dim=-1)
            scores.append(probs.mean(dim=0)[0, 1])
            _, patch_tokens = model.encode_image(image, features_list)
            ln = linearlayer(patch_tokens)
        patch_ln.append(ln)
        vv_tokens.append(ln[6][0])
        with torch.no_grad():
            tfa_maps.append(final_map(vl.resize_tokens(ln[6].clone()))[0])
    tensors['image_score'] = torch.stack(scores)
    tensors['vv_tokens'] = torch.stack(vv_tokens)
    tensors['tfa_map'] = torch.stack(tfa_maps)

    # test-time adaptation: one adapter and one AdamW for the class
    adapter = model_m.TextAdapter(text_prompts_list[ANOVL_CLASS])
    opt = torch.optim.AdamW(adapter.parameters(), 1e-3)
    steps = 5
    torch.manual_seed(TTA_SEED)
    tta_maps = []
    for ln in patch_ln:
        adapter.apply(vl.weight_reset)
        for _ in range(steps):
            tokens = adapter(vl.resize_tokens(ln[6]))
            tokens = tokens / tokens.norm(dim=-1, keepdim=True)
            amap = torch.softmax(tokens @ text_features, dim=-1)
            loss = vl.loss_func(amap)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            tta_maps.append(final_map(adapter(vl.resize_tokens(ln[6]), is_test=True))[0])
    tensors['tta_map'] = torch.stack(tta_maps)
    meta = dict(anovl_commit=_git_commit(root) or ANOVL_COMMIT, weight_seed=WEIGHT_SEED,
                input_seed=INPUT_SEED, tta_seed=TTA_SEED, tta_steps=steps, arch=VIT_ARCH,
                cls_name=ANOVL_CLASS, features_list=features_list, param_names=names,
                noise_std=0.05 * 1.1)
    _save(osp.join(out, 'anovl', 'anovl_golden.safetensors'), tensors, meta)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--maskclip-root', required=True, help='checkout of chongzhou96/MaskCLIP')
    p.add_argument('--anovl-root', required=True, help='checkout of hq-deng/AnoVL')
    p.add_argument('--out', default=osp.join(ROOT, 'tests', 'data', 'golden'))
    p.add_argument('--extra-path', action='append', default=[],
                   help='folders put on sys.path (e.g. one holding kornia for AnoVL)')
    p.add_argument('--part', choices=('all', 'maskclip', 'anovl'), default='all')
    args = p.parse_args()
    for root, what in ((args.maskclip_root, 'mmseg/models/decode_heads/maskclip_head.py'),
                       (args.anovl_root, 'vl_test.py')):
        if not osp.isfile(osp.join(root, what)):
            raise SystemExit(f'{root} is not the expected checkout: {what} is missing')
    for extra in args.extra_path:
        sys.path.insert(0, extra)
    if args.part == 'all':
        for part in ('maskclip', 'anovl'):  # one process each: two different open_clips
            cmd = [sys.executable, osp.abspath(__file__), '--part', part,
                   '--maskclip-root', args.maskclip_root, '--anovl-root', args.anovl_root,
                   '--out', args.out] + sum((['--extra-path', e] for e in args.extra_path), [])
            subprocess.check_call(cmd)
        return
    if args.part == 'maskclip':
        run_maskclip(osp.abspath(args.maskclip_root), args.out)
    else:
        run_anovl(osp.abspath(args.anovl_root), args.out)


if __name__ == '__main__':
    main()
