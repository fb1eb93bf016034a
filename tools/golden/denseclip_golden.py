"""Golden outputs of the DenseCLIP authors' code, for clipdense's parity tests.

    python tools/golden/denseclip_golden.py --authors-root /path/to/DenseCLIP \
        [--out tests/data/golden/denseclip]

``--authors-root`` is a checkout of https://github.com/raoyongming/DenseCLIP
(the fixtures in ``tests/data/golden/denseclip`` were made from commit
``5eda47f01a1011286c98425554cc96e7df6eb759``). Nothing of that code is part of
clipdense: this script imports it at run time.

How the fixtures are made
-------------------------
1. The authors' files import mmseg 0.x / mmcv 1.x / mmdet 2.x, which cannot
   be installed beside mmseg 1.x. Only registries, two helpers
   (``add_prefix``, ``resize``) and base classes are used at import time, so
   small fake modules (:func:`_install_stubs`) are put into ``sys.modules``
   before ``segmentation/denseclip`` and ``detection/denseclip`` are loaded
   (as the packages ``authors_seg`` and ``authors_det``). timm, ftfy and
   regex are the real ones (open_clip's dependencies; timm's old
   ``timm.models.layers.drop`` name is pointed at ``timm.layers.drop``).
2. The authors' classes are built at tiny widths (ResNet ``layers=[1, 1, 1,
   1]``, width 4, 32 attention-pool heads; ViT-B/16-like with width 32, 4
   blocks; text tower width 16, 2 blocks; context decoder width 8, 2
   layers; joint space 16) with ``torch.manual_seed(SEED)`` weights, BN /
   GroupNorm affine parameters and running statistics randomised so that no
   layer is an identity. The token-embedding table keeps only the rows of
   the tokens used (others zero) so the fixture stays small; the tests
   rebuild the full table from those rows.
3. Fixed inputs (seeded) run through the authors' own functions, in eval
   mode: the image towers' ``forward`` (stage maps / pyramid, global and
   dense embeddings) at the training size and at a second size (per-forward
   resize or crop of the positional table), ``CLIPTextContextEncoder``,
   ``ContextDecoder``, the segmentor's ``after_extract_feat`` (text
   embeddings after the context decoder, score map, the features handed to
   the FPN) and, for detection, ``compute_text_features``,
   ``compute_score_maps``, ``build_seg_target`` and ``compute_seg_loss``
   (called on a namespace standing in for the detector, so mmdet's detector
   machinery is not needed).
4. Each fixture is one ``.safetensors`` file: the weights under the keys of
   the authors' state dict (``backbone.*``, ``text_encoder.*``,
   ``context_decoder.*``, ``contexts``, ``gamma``, as in their released
   checkpoints), inputs and outputs under ``golden.*``, and metadata
   (commit, class names, sizes) as JSON strings.

The tests (``tests/models/test_denseclip_golden.py``) convert the weights with
``tools/model_converters/denseclip2clipdense.py``, build clipdense's modules
with the paper switches, and compare.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import types
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

SEED = 20
CLASS_NAMES = ('sky', 'road', 'potted plant')
# text: [SOT] + 3 name tokens + [EOT] = 5 tokens after 8 learnable contexts
CLASS_CONTEXT_LENGTH = 5
TEXT_CONTEXT_LENGTH = 13
EMBED_DIM = 16
TEXT = dict(transformer_width=16, transformer_heads=2, transformer_layers=2)
DECODER = dict(transformer_width=8, transformer_heads=2, transformer_layers=2,
               dropout=0.1)
RN = dict(layers=[1, 1, 1, 1], width=4)
VIT = dict(patch_size=16, width=32, layers=4, heads=2, out_indices=[0, 1, 2, 3])
SEG_RN_SIZE = 64       # training input size: attention-pool table 2x2
SEG_VIT_SIZE = 64      # training input size: ViT table 4x4
DET_RN_SIZE = 128      # detection: a 4x4 table cropped per forward
TAU = 0.07


# ---------------------------------------------------------------------------
# fake mm* modules (import-time needs of the authors' files only)
def _registry(name):
    class _Registry:
        def __init__(self):
            self.name = name
            self.modules = {}

        def register_module(self, cls=None, **kwargs):
            def deco(c):
                self.modules[c.__name__] = c
                return c
            return deco(cls) if cls is not None else deco

    return _Registry()


class _StubBase(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()


def _install_stubs():
    """Put fake mmcv 1.x / mmseg 0.x / mmdet 2.x modules into sys.modules."""
    def mod(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        m.__path__ = []  # a package, so submodules can be imported
        sys.modules[name] = m
        return m

    def add_prefix(inputs, prefix):
        return {f'{prefix}.{k}': v for k, v in inputs.items()}

    def resize(input, size=None, scale_factor=None, mode='nearest',
               align_corners=None, warning=True):
        return F.interpolate(input, size, scale_factor, mode, align_corners)

    def unused(*args, **kwargs):
        raise RuntimeError('not available in the golden-fixture stubs')

    mod('mmcv')
    mod('mmcv.cnn', ConvModule=_StubBase)
    mod('mmseg')
    mod('mmseg.core', add_prefix=add_prefix)
    mod('mmseg.ops', resize=resize, Upsample=_StubBase)
    mod('mmseg.models', builder=None)
    sys.modules['mmseg.models'].builder = mod(
        'mmseg.models.builder', BACKBONES=_registry('backbone'),
        SEGMENTORS=_registry('segmentor'), HEADS=_registry('head'),
        NECKS=_registry('neck'), build_backbone=unused, build_head=unused,
        build_neck=unused)
    mod('mmseg.models.backbones', ResNet=_StubBase, VisionTransformer=_StubBase)
    mod('mmseg.models.segmentors')
    mod('mmseg.models.segmentors.base', BaseSegmentor=_StubBase)
    mod('mmseg.models.decode_heads')
    mod('mmseg.models.decode_heads.decode_head', BaseDecodeHead=_StubBase)
    mod('mmdet')
    mod('mmdet.core', bbox2result=unused)
    mod('mmdet.models')
    mod('mmdet.models.builder', BACKBONES=_registry('backbone'),
        DETECTORS=_registry('detector'), build_backbone=unused,
        build_head=unused, build_neck=unused)
    mod('mmdet.models.detectors')
    mod('mmdet.models.detectors.single_stage', SingleStageDetector=_StubBase)
    mod('mmdet.models.detectors.two_stage', TwoStageDetector=_StubBase)
    mod('mmdet.utils', get_root_logger=unused)
    # timm >= 0.9 no longer exposes the ``drop`` submodule through the
    # deprecated ``timm.models.layers`` alias the authors import it from
    import timm.models.layers as old_layers
    if not hasattr(old_layers, 'drop'):
        import timm.layers.drop as drop_module
        old_layers.drop = drop_module


def _load_package(alias: str, path: str):
    """Import the authors' ``denseclip`` package at ``path`` as ``alias``."""
    init = osp.join(path, '__init__.py')
    if not osp.isfile(init):
        raise FileNotFoundError(
            f'{init} not found: --authors-root must be a checkout of '
            'raoyongming/DenseCLIP (with segmentation/ and detection/)')
    spec = importlib.util.spec_from_file_location(
        alias, init, submodule_search_locations=[path])
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
def _randomise_norms(model: nn.Module, gen: torch.Generator):
    """Non-trivial affine parameters and running statistics for every norm."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm,
                          nn.LayerNorm)):
            if getattr(m, 'weight', None) is not None:
                with torch.no_grad():
                    m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
            if getattr(m, 'running_mean', None) is not None:
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1 + 0.5 * torch.rand(m.running_var.shape, generator=gen))


def _init_text(enc: nn.Module, gen: torch.Generator, used_ids: torch.Tensor):
    """The authors leave these tables uninitialised (filled by CLIP weights)."""
    with torch.no_grad():
        table = torch.zeros_like(enc.token_embedding.weight)
        table[used_ids] = 0.5 * torch.randn(len(used_ids), table.shape[1], generator=gen)
        enc.token_embedding.weight.copy_(table)
        enc.positional_embedding.copy_(0.1 * torch.randn(enc.positional_embedding.shape,
                                                         generator=gen))
        enc.text_projection.copy_(enc.text_projection.shape[0] ** -0.5 * torch.randn(
            enc.text_projection.shape, generator=gen))


def _text_state(sd: dict, used_ids: torch.Tensor) -> dict:
    """Replace the token table by its used rows (the rest is zero)."""
    key = 'text_encoder.token_embedding.weight'
    table = sd.pop(key)
    unused = torch.ones(table.shape[0], dtype=torch.bool)
    unused[used_ids] = False
    assert torch.count_nonzero(table[unused]) == 0
    sd['golden.token_ids'] = used_ids.clone()
    sd['golden.token_rows'] = table[used_ids].clone()
    sd['golden.token_table_shape'] = torch.tensor(list(table.shape))
    return sd


def _meta(commit: str, **extra) -> dict:
    meta = dict(authors_repo='raoyongming/DenseCLIP', authors_commit=commit,
                class_names=list(CLASS_NAMES), seed=SEED,
                made_by='tools/golden/denseclip_golden.py')
    meta.update(extra)
    return {k: json.dumps(v) for k, v in meta.items()}


def _save(path: str, tensors: dict, meta: dict):
    from safetensors.torch import save_file
    tensors = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    save_file(tensors, path, metadata=meta)
    size = os.path.getsize(path)
    if size > 1024 * 1024:
        raise RuntimeError(f'{path} is {size} bytes; fixtures must stay under 1 MB')
    print(f'wrote {path} ({size / 1024:.0f} KiB, {len(tensors)} tensors)')


def _parts(pkg, gen, used_ids, visual_dim):
    models = pkg.models
    text_encoder = models.CLIPTextContextEncoder(
        context_length=TEXT_CONTEXT_LENGTH, embed_dim=visual_dim, **TEXT)
    _init_text(text_encoder, gen, used_ids)
    _randomise_norms(text_encoder, gen)
    context_decoder = models.ContextDecoder(visual_dim=visual_dim, **DECODER)
    n_ctx = TEXT_CONTEXT_LENGTH - CLASS_CONTEXT_LENGTH
    contexts = nn.Parameter(torch.randn(1, n_ctx, TEXT['transformer_width']))
    nn.init.trunc_normal_(contexts)  # the authors' init: std 1.0
    gamma = nn.Parameter(0.3 * torch.randn(visual_dim, generator=gen))  # not 1e-4: visible
    return text_encoder, context_decoder, contexts, gamma


def _state(prefix_modules: dict, extra: dict) -> dict:
    sd = {}
    for prefix, m in prefix_modules.items():
        for k, v in m.state_dict().items():
            sd[f'{prefix}.{k}'] = v
    sd.update(extra)
    return sd


# ---------------------------------------------------------------------------
def make_seg(pkg, tokenize, commit, out_dir, kind):
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    texts = torch.cat([tokenize(c, context_length=CLASS_CONTEXT_LENGTH) for c in CLASS_NAMES])
    used_ids = torch.unique(texts)
    models, seg = pkg.models, pkg.denseclip
    if kind == 'rn':
        size = SEG_RN_SIZE
        backbone = models.CLIPResNetWithAttention(
            output_dim=EMBED_DIM, input_resolution=size, **RN)
        other = (96, 64)      # C5 3x2: the 2x2 table resized per forward
        concat_index = 3
    else:
        size = SEG_VIT_SIZE
        backbone = models.CLIPVisionTransformer(
            input_resolution=size, output_dim=EMBED_DIM, get_embeddings=True,
            drop_path_rate=0.1, **VIT)
        other = (48, 80)      # grid 3x5: the 4x4 table resized per forward
        concat_index = 2
    _randomise_norms(backbone, gen)
    text_encoder, context_decoder, contexts, gamma = _parts(pkg, gen, used_ids, EMBED_DIM)
    _randomise_norms(context_decoder, gen)
    for m in (backbone, text_encoder, context_decoder):
        m.eval()

    img = torch.randn(2, 3, size, size, generator=gen)
    img2 = torch.randn(1, 3, *other, generator=gen)
    text_q = torch.randn(2, len(CLASS_NAMES), EMBED_DIM, generator=gen)
    mem = torch.randn(2, 7, EMBED_DIM, generator=gen)
    fake = types.SimpleNamespace(
        context_feature='attention', text_encoder=text_encoder,
        context_decoder=context_decoder, texts=texts, contexts=contexts,
        gamma=gamma, score_concat_index=concat_index)
    tensors = {'golden.img': img, 'golden.img2': img2,
               'golden.decoder_text': text_q, 'golden.decoder_memory': mem}
    with torch.no_grad():
        for tag, x in (('', img), ('2', img2)):
            outs = backbone(x)
            for i in range(4):
                tensors[f'golden.stage{i}{tag}'] = outs[i]
            tensors[f'golden.global{tag}'] = outs[4][0]
            tensors[f'golden.dense{tag}'] = outs[4][1]
            text_emb, x_orig, score = seg.DenseCLIP.after_extract_feat(fake, outs)
            tensors[f'golden.text_embeddings{tag}'] = text_emb
            tensors[f'golden.score_map{tag}'] = score
            # the other levels are the stage maps themselves (checked here)
            for i in range(4):
                if i != concat_index:
                    assert x_orig[i] is outs[i]
            tensors[f'golden.fpn_in{concat_index}{tag}'] = x_orig[concat_index]
        tensors['golden.text_encoder_out'] = text_encoder(texts, contexts)
        tensors['golden.decoder_out'] = context_decoder(text_q, mem)
    sd = _state(dict(backbone=backbone, text_encoder=text_encoder,
                     context_decoder=context_decoder),
                dict(contexts=contexts.data, gamma=gamma.data))
    sd = _text_state(sd, used_ids)
    sd.update(tensors)
    cfg = dict(model='segmentation', backbone=kind, train_size=size,
               score_concat_index=concat_index, embed_dim=EMBED_DIM,
               class_context_length=CLASS_CONTEXT_LENGTH,
               text_context_length=TEXT_CONTEXT_LENGTH, text=TEXT, decoder=DECODER,
               rn=RN if kind == 'rn' else None, vit=VIT if kind == 'vit' else None)
    _save(osp.join(out_dir, f'seg_{kind}.safetensors'), sd, _meta(commit, config=cfg))


def make_det(pkg, tokenize, commit, out_dir):
    torch.manual_seed(SEED + 1)
    gen = torch.Generator().manual_seed(SEED + 1)
    texts = torch.cat([tokenize(c, context_length=CLASS_CONTEXT_LENGTH) for c in CLASS_NAMES])
    used_ids = torch.unique(texts)
    models, det = pkg.models, pkg.denseclip
    backbone = models.CLIPResNetWithAttention(
        output_dim=EMBED_DIM, input_resolution=DET_RN_SIZE, **RN)
    _randomise_norms(backbone, gen)
    text_encoder, context_decoder, contexts, gamma = _parts(pkg, gen, used_ids, EMBED_DIM)
    _randomise_norms(context_decoder, gen)
    for m in (backbone, text_encoder, context_decoder):
        m.eval()
    cls = det.DenseCLIP_RetinaNet
    fake = types.SimpleNamespace(
        text_encoder=text_encoder, context_decoder=context_decoder, texts=texts,
        contexts=contexts, gamma=gamma, tau=TAU, class_names=list(CLASS_NAMES))
    fake.build_seg_target = partial(cls.build_seg_target, fake)
    # a padded batch of 96x64 (C5 3x2: the 4x4 table cropped to [:3, :2])
    img = torch.randn(2, 3, 96, 64, generator=gen)
    boxes = [torch.tensor([[3.0, 5.0, 40.0, 61.0], [10.5, 30.2, 62.9, 95.0],
                           [20.0, 20.0, 22.0, 22.5]]),
             torch.tensor([[0.0, 0.0, 63.0, 47.0]])]
    labels = [torch.tensor([0, 2, 1]), torch.tensor([1])]
    tensors = {'golden.img': img}
    for i, (b, lb) in enumerate(zip(boxes, labels)):
        tensors[f'golden.boxes{i}'] = b
        tensors[f'golden.labels{i}'] = lb
    with torch.no_grad():
        outs = backbone(img)
        for i in range(4):
            tensors[f'golden.stage{i}'] = outs[i]
        tensors['golden.global'] = outs[4][0]
        tensors['golden.dense'] = outs[4][1]
        text = cls.compute_text_features(fake, outs)
        score_maps = cls.compute_score_maps(fake, outs, text)
        tensors['golden.text_embeddings'] = text
        tensors['golden.score_map3'] = score_maps[3]   # cosines / tau
        tensors['golden.score_map0'] = score_maps[0]   # upsampled to stride 4
        tensors['golden.c5_in'] = torch.cat([outs[3], score_maps[3]], dim=1)
        target, mask = cls.build_seg_target(fake, img, None, boxes, labels)
        tensors['golden.seg_target'] = target
        tensors['golden.seg_mask'] = mask
        tensors['golden.seg_loss'] = cls.compute_seg_loss(
            fake, img, score_maps[0], None, boxes, labels).reshape(1)
    sd = _state(dict(backbone=backbone, text_encoder=text_encoder,
                     context_decoder=context_decoder),
                dict(contexts=contexts.data, gamma=gamma.data))
    sd = _text_state(sd, used_ids)
    sd.update(tensors)
    cfg = dict(model='detection', backbone='rn', train_size=DET_RN_SIZE, tau=TAU,
               embed_dim=EMBED_DIM, class_context_length=CLASS_CONTEXT_LENGTH,
               text_context_length=TEXT_CONTEXT_LENGTH, text=TEXT, decoder=DECODER, rn=RN)
    _save(osp.join(out_dir, 'det_rn.safetensors'), sd, _meta(commit, config=cfg))


def _commit(root: str) -> str:
    try:
        return subprocess.check_output(['git', '-C', root, 'rev-parse', 'HEAD'],
                                       stderr=subprocess.DEVNULL, text=True).strip()
    except Exception:
        return 'unknown (not a git checkout)'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--authors-root', required=True,
                        help='checkout of github.com/raoyongming/DenseCLIP')
    parser.add_argument('--out', default=osp.join('tests', 'data', 'golden', 'denseclip'),
                        help='output folder of the fixtures')
    parser.add_argument('--commit', default=None,
                        help="the checkout's commit (default: git rev-parse HEAD there)")
    args = parser.parse_args(argv)
    root = osp.abspath(args.authors_root)
    commit = args.commit or _commit(root)
    _install_stubs()
    seg = _load_package('authors_seg', osp.join(root, 'segmentation', 'denseclip'))
    det = _load_package('authors_det', osp.join(root, 'detection', 'denseclip'))
    tokenize = sys.modules['authors_seg.untils'].tokenize
    os.makedirs(args.out, exist_ok=True)
    make_seg(seg, tokenize, commit, args.out, 'rn')
    make_seg(seg, tokenize, commit, args.out, 'vit')
    make_det(det, tokenize, commit, args.out)


if __name__ == '__main__':
    main()
