"""tools/model_converters/ovseg2clipdense.py on checkpoints in the authors'
key layout.

How the fixtures are made: :func:`authors_ovseg_state` writes, at tiny
widths, every key and shape of the authors' detectron2 OVSeg model as their
modules define them (read in facebookresearch/ov-seg @ 36f49d4):
``open_vocab_seg/modeling/backbone/swin.py`` (the official Swin layout:
``patch_embed.proj``, ``layers.i.blocks.j.{norm1, attn.qkv, attn.proj,
attn.relative_position_bias_table, attn.relative_position_index, norm2,
mlp.fc1, mlp.fc2}``, ``layers.i.downsample.{reduction, norm}``, ``norm{i}``),
``heads/pixel_decoder.py`` (``BasePixelDecoder``: ``adapter_i``,
``layer_i``, detectron2 ``Conv2d`` with a ``norm``, ``mask_features``),
``transformer/transformer.py`` + ``transformer_predictor.py`` +
``open_vocab_transformer_predictor.py`` (``nn.MultiheadAttention`` decoder
layers, ``query_embed``, ``input_proj``, the ``class_embed`` and
``mask_embed`` MLPs), ``clip_adapter/adapter.py`` (``non_object_embedding``,
pixel statistics) and ``third_party/CLIP/clip/model.py`` (OpenAI's CLIP keys,
which open_clip shares, plus ``visual.mask_embedding``), with random values.
Nothing in it is derived from clipdense's own key names.
"""
import os.path as osp
import sys

import pytest
import torch

from clipdense.testing import register_tiny_models

register_tiny_models()

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))

import ovseg2clipdense as conv  # noqa: E402

EMBED = 16  # Swin width
DEPTHS = (1, 1, 2, 1)
HEADS = (1, 2, 2, 4)
WINDOW = 4
CONV_DIM = 32  # pixel decoder / transformer width
QUERIES = 6
DEC_LAYERS = 2
FFN = 64
CLS_HIDDEN = 32
PROMPT_DEPTH = 2
CLIP_ARCH = 'clipdense-tiny-vit16'


def _rel_index(w):
    """The official Swin relative position index (window w x w)."""
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing='ij'))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)
    rel[:, :, 0] += w - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)


def authors_ovseg_state(num_classes=3, seed=0):
    """The authors' detectron2 OVSeg ``model`` state dict at tiny widths (see
    the module docstring)."""
    import open_clip
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    s = {}
    # D2SwinTransformer
    s['backbone.patch_embed.proj.weight'] = r(EMBED, 3, 4, 4)
    s['backbone.patch_embed.proj.bias'] = r(EMBED)
    s['backbone.patch_embed.norm.weight'] = r(EMBED)
    s['backbone.patch_embed.norm.bias'] = r(EMBED)
    for i, (d, h) in enumerate(zip(DEPTHS, HEADS)):
        dim = EMBED * 2 ** i
        for j in range(d):
            b = f'backbone.layers.{i}.blocks.{j}.'
            s[b + 'norm1.weight'], s[b + 'norm1.bias'] = r(dim), r(dim)
            s[b + 'attn.relative_position_bias_table'] = r((2 * WINDOW - 1) ** 2, h)
            s[b + 'attn.relative_position_index'] = _rel_index(WINDOW)
            s[b + 'attn.qkv.weight'], s[b + 'attn.qkv.bias'] = r(3 * dim, dim), r(3 * dim)
            s[b + 'attn.proj.weight'], s[b + 'attn.proj.bias'] = r(dim, dim), r(dim)
            s[b + 'norm2.weight'], s[b + 'norm2.bias'] = r(dim), r(dim)
            s[b + 'mlp.fc1.weight'], s[b + 'mlp.fc1.bias'] = r(4 * dim, dim), r(4 * dim)
            s[b + 'mlp.fc2.weight'], s[b + 'mlp.fc2.bias'] = r(dim, 4 * dim), r(dim)
        if i < 3:
            s[f'backbone.layers.{i}.downsample.reduction.weight'] = r(2 * dim, 4 * dim)
            s[f'backbone.layers.{i}.downsample.norm.weight'] = r(4 * dim)
            s[f'backbone.layers.{i}.downsample.norm.bias'] = r(4 * dim)
        s[f'backbone.norm{i}.weight'], s[f'backbone.norm{i}.bias'] = r(dim), r(dim)
    # BasePixelDecoder (res2..res5; GN convs without bias)
    chans = [EMBED * 2 ** i for i in range(4)]
    p = 'sem_seg_head.pixel_decoder.'
    for i in range(3):
        s[p + f'adapter_{i + 1}.weight'] = r(CONV_DIM, chans[i], 1, 1)
        s[p + f'layer_{i + 1}.weight'] = r(CONV_DIM, CONV_DIM, 3, 3)
        for name in (f'adapter_{i + 1}', f'layer_{i + 1}'):
            s[p + name + '.norm.weight'], s[p + name + '.norm.bias'] = r(CONV_DIM), r(CONV_DIM)
    s[p + 'layer_4.weight'] = r(CONV_DIM, chans[3], 3, 3)
    s[p + 'layer_4.norm.weight'], s[p + 'layer_4.norm.bias'] = r(CONV_DIM), r(CONV_DIM)
    s[p + 'mask_features.weight'], s[p + 'mask_features.bias'] = r(CONV_DIM, CONV_DIM, 3, 3), \
        r(CONV_DIM)
    # OpenVocabTransformerPredictor (ENC_LAYERS = 0, post-norm decoder)
    q = 'sem_seg_head.predictor.'
    s[q + 'query_embed.weight'] = r(QUERIES, CONV_DIM)
    s[q + 'input_proj.weight'], s[q + 'input_proj.bias'] = r(CONV_DIM, chans[3], 1, 1), \
        r(CONV_DIM)
    for layer in range(DEC_LAYERS):
        b = q + f'transformer.decoder.layers.{layer}.'
        for att in ('self_attn', 'multihead_attn'):
            s[b + att + '.in_proj_weight'] = r(3 * CONV_DIM, CONV_DIM)
            s[b + att + '.in_proj_bias'] = r(3 * CONV_DIM)
            s[b + att + '.out_proj.weight'] = r(CONV_DIM, CONV_DIM)
            s[b + att + '.out_proj.bias'] = r(CONV_DIM)
        s[b + 'linear1.weight'], s[b + 'linear1.bias'] = r(FFN, CONV_DIM), r(FFN)
        s[b + 'linear2.weight'], s[b + 'linear2.bias'] = r(CONV_DIM, FFN), r(CONV_DIM)
        for n in (1, 2, 3):
            s[b + f'norm{n}.weight'], s[b + f'norm{n}.bias'] = r(CONV_DIM), r(CONV_DIM)
    s[q + 'transformer.decoder.norm.weight'] = r(CONV_DIM)
    s[q + 'transformer.decoder.norm.bias'] = r(CONV_DIM)
    clip = open_clip.create_model(CLIP_ARCH)
    embed_dim = clip.text_projection.shape[1]
    s[q + 'class_embed.layers.0.weight'] = r(CLS_HIDDEN, CONV_DIM)
    s[q + 'class_embed.layers.0.bias'] = r(CLS_HIDDEN)
    s[q + 'class_embed.layers.1.weight'] = r(embed_dim, CLS_HIDDEN)
    s[q + 'class_embed.layers.1.bias'] = r(embed_dim)
    for i in range(3):
        out = CONV_DIM
        s[q + f'mask_embed.layers.{i}.weight'] = r(out, CONV_DIM)
        s[q + f'mask_embed.layers.{i}.bias'] = r(out)
    # MaskFormerClipAdapter: the (mask-adapted) OpenAI-layout CLIP
    for k, v in clip.state_dict().items():
        s['clip_adapter.clip_model.' + k] = torch.randn(v.shape, generator=g) * 0.05 \
            if v.is_floating_point() else v
    v = clip.visual
    grid = v.grid_size[0] * v.grid_size[1]
    s['clip_adapter.clip_model.visual.mask_embedding'] = r(PROMPT_DEPTH, grid,
                                                           v.transformer.width)
    s['clip_adapter.non_object_embedding'] = r(1, embed_dim)
    s['clip_adapter.pixel_mean'] = torch.tensor([0.48, 0.46, 0.41]).view(1, 3, 1, 1) * 255
    s['clip_adapter.pixel_std'] = torch.tensor([0.27, 0.26, 0.28]).view(1, 3, 1, 1) * 255
    # MaskFormer meta-architecture buffers
    s['criterion.empty_weight'] = torch.ones(num_classes + 1)
    s['pixel_mean'] = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    s['pixel_std'] = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    return s


def tiny_clipdense_ovseg():
    """clipdense's OVSeg at the same tiny widths: mmseg Swin + OVSegHead with
    a tiny ViT CLIP (text encoder and masked-crop classifier) and prompts."""
    from mmengine.config import ConfigDict

    from clipdense.registry import MODELS
    from clipdense.testing.ovseg import head_cfg
    head = head_cfg(arch=CLIP_ARCH, in_channels=[EMBED * 2 ** i for i in range(4)],
                    class_embed_hidden=CLS_HIDDEN)
    head['clip_classifier'] = dict(type='MaskedCropCLIP', arch=CLIP_ARCH, pretrained=None,
                                   prompt_depth=PROMPT_DEPTH)
    head['num_queries'] = QUERIES
    head['transformer_decoder']['num_layers'] = DEC_LAYERS
    cfg = ConfigDict(
        type='OVSeg',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size=(64, 64),
                               pad_val=0, seg_pad_val=255),
        backbone=dict(type='mmseg.SwinTransformer', pretrain_img_size=64, embed_dims=EMBED,
                      depths=list(DEPTHS), num_heads=list(HEADS), window_size=WINDOW,
                      mlp_ratio=4, qkv_bias=True, out_indices=(0, 1, 2, 3), init_cfg=None),
        decode_head=head, train_cfg=dict(), test_cfg=dict(mode='whole'))
    from mmengine.registry import init_default_scope
    init_default_scope('clipdense')
    return MODELS.build(cfg)


def test_converted_authors_checkpoint_loads_strictly_and_maps_values():
    src = authors_ovseg_state()
    out, unused = conv.convert_ovseg_seg(src)
    assert sorted(unused) == ['clip_adapter.pixel_mean', 'clip_adapter.pixel_std',
                              'criterion.empty_weight', 'pixel_mean', 'pixel_std']
    model = tiny_clipdense_ovseg()
    model.load_state_dict(out, strict=True)
    sd = model.state_dict()
    pairs = [
        ('backbone.layers.2.blocks.1.attn.qkv.weight',
         'backbone.stages.2.blocks.1.attn.w_msa.qkv.weight'),
        ('backbone.layers.1.blocks.0.mlp.fc2.bias', 'backbone.stages.1.blocks.0.ffn.layers.1.bias'),
        ('backbone.patch_embed.proj.weight', 'backbone.patch_embed.projection.weight'),
        ('sem_seg_head.pixel_decoder.adapter_2.weight',
         'decode_head.pixel_decoder.lateral_convs.1.conv.weight'),
        ('sem_seg_head.pixel_decoder.layer_4.norm.bias',
         'decode_head.pixel_decoder.last_feat_conv.gn.bias'),
        ('sem_seg_head.predictor.transformer.decoder.layers.1.multihead_attn.in_proj_weight',
         'decode_head.transformer_decoder.layers.1.cross_attn.attn.in_proj_weight'),
        ('sem_seg_head.predictor.transformer.decoder.layers.0.norm3.weight',
         'decode_head.transformer_decoder.layers.0.norms.2.weight'),
        ('sem_seg_head.predictor.class_embed.layers.1.weight', 'decode_head.cls_embed.proj.2.weight'),
        ('sem_seg_head.predictor.mask_embed.layers.2.bias', 'decode_head.mask_embed.4.bias'),
        ('clip_adapter.clip_model.visual.mask_embedding', 'decode_head.clip_classifier.mask_prompts'),
        ('clip_adapter.clip_model.visual.transformer.resblocks.0.attn.in_proj_weight',
         'decode_head.clip_classifier.tower.visual.transformer.resblocks.0.attn.in_proj_weight'),
        ('clip_adapter.clip_model.token_embedding.weight',
         'decode_head.text_encoder.token_embedding.weight'),
    ]
    for a, b in pairs:
        assert torch.equal(sd[b], src[a]), (a, b)
    assert torch.equal(sd['decode_head.cls_embed.null_embed'],
                       src['clip_adapter.non_object_embedding'][0])
    # the model runs on the converted weights
    model.eval()
    with torch.no_grad():
        seg = model.predict(torch.rand(1, 3, 64, 64) * 255,
                            [_sample()])[0].pred_sem_seg.data
    assert seg.shape == (1, 64, 64)


def _sample():
    from mmseg.structures import SegDataSample
    return SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                       pad_shape=(64, 64)))


def test_patch_merging_reorder_is_the_official_merge():
    """mmseg's PatchMerging with converted weights computes the official
    Swin patch merging (concatenate x[0::2,0::2], x[1::2,0::2], x[0::2,1::2],
    x[1::2,1::2], LayerNorm, reduction)."""
    import torch.nn.functional as F
    from mmseg.models.utils.embed import PatchMerging
    c, h, w = 4, 6, 8
    g = torch.Generator().manual_seed(0)
    red = torch.randn(2 * c, 4 * c, generator=g)
    nw, nb = torch.randn(4 * c, generator=g), torch.randn(4 * c, generator=g)
    x = torch.randn(1, h, w, c, generator=g)
    cat = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    want = F.layer_norm(cat, (4 * c, ), nw, nb) @ red.t()
    pm = PatchMerging(c, 2 * c)
    pm.reduction.weight.data = conv.unfold_reduction_order(red)
    pm.norm.weight.data = conv.unfold_norm_order(nw)
    pm.norm.bias.data = conv.unfold_norm_order(nb)
    got, size = pm(x.reshape(1, h * w, c), (h, w))
    assert size == (h // 2, w // 2)
    assert torch.allclose(got.reshape(want.shape), want, atol=1e-5)


def test_cli_round_trip_safe_loading_and_refusals(tmp_path):
    from mmengine.runner import load_checkpoint
    src = authors_ovseg_state()
    path = str(tmp_path / 'ovseg_swinbase_vitL14_ft_mpt.pth')
    torch.save({'model': src, 'iteration': 119999}, path)
    out = str(tmp_path / 'converted.pth')
    conv.main(['seg', path, out])
    model = tiny_clipdense_ovseg()
    load_checkpoint(model, out, map_location='cpu', strict=True)
    assert torch.equal(model.state_dict()['decode_head.query_embed.weight'],
                       src['sem_seg_head.predictor.query_embed.weight'])
    # an unknown key is refused by name
    bad = dict(src)
    bad['sem_seg_head.predictor.transformer.encoder.layers.0.linear1.weight'] = torch.zeros(1)
    with pytest.raises(conv.UnmappableKeyError, match='encoder.layers.0.linear1'):
        conv.convert_ovseg_seg(bad)
    with pytest.raises(conv.UnmappableKeyError, match='backbone'):
        conv.convert_ovseg_seg({'pixel_mean': torch.zeros(3)})
    # a pickle that would run code is refused before anything runs
    from clipdense.fileio import UnsafeCheckpointError
    evil = str(tmp_path / 'evil.pth')
    torch.save({'model': src, 'cfg': _Opaque()}, evil)
    with pytest.raises(UnsafeCheckpointError):
        conv.main(['seg', evil, str(tmp_path / 'x.pth')])


class _Opaque:
    """Not a weight: loading it needs full unpickling."""


def test_released_adapted_clip_converts_to_open_clip_and_prompts(tmp_path):
    import open_clip

    from clipdense.models.region_classifiers import MaskedCropCLIP
    ref = open_clip.create_model(CLIP_ARCH)
    g = torch.Generator().manual_seed(1)
    state = {'module.' + k: torch.randn(v.shape, generator=g) for k, v in
             ref.state_dict().items()}
    grid = ref.visual.grid_size[0] * ref.visual.grid_size[1]
    state['module.visual.mask_embedding'] = torch.randn(3, grid, ref.visual.transformer.width,
                                                        generator=g)
    path = str(tmp_path / 'epoch_5.pt')
    torch.save({'epoch': 5, 'name': 'mpt', 'state_dict': state}, path)
    out, prompts = str(tmp_path / 'clip.pt'), str(tmp_path / 'prompts.pt')
    with pytest.raises(SystemExit, match='--prompts'):
        conv.main(['clip', path, out])
    conv.main(['clip', path, out, '--prompts', prompts])
    clip = open_clip.create_model(CLIP_ARCH)
    clip.load_state_dict(torch.load(out, weights_only=True), strict=True)
    assert torch.equal(clip.visual.conv1.weight, state['module.visual.conv1.weight'])
    m = MaskedCropCLIP(CLIP_ARCH, pretrained=out, prompt_depth=3, prompt_weights=prompts)
    assert torch.equal(m.mask_prompts.data, state['module.visual.mask_embedding'])
    with pytest.raises(conv.UnmappableKeyError, match='optimizer_thing'):
        conv.convert_ovseg_clip({'visual.conv1.weight': torch.zeros(1),
                                 'optimizer_thing': torch.zeros(1)})


def test_authors_clip_layout_is_open_clips_and_converts():
    """The key names and shapes of the authors' CLIP (recorded from their
    ``third_party/CLIP`` by tools/golden/ovseg_golden.py) are open_clip's at
    the same widths plus ``visual.mask_embedding``: the ``clip`` converter
    maps such a state dict into an open_clip model strictly."""
    import json

    import open_clip
    path = osp.join(ROOT, 'tests', 'data', 'golden', 'ovseg', 'clip_layout.json')
    layout = json.load(open(path))
    c = layout['config']
    model = open_clip.model.CLIP(
        embed_dim=c['embed_dim'], quick_gelu=True,
        vision_cfg=dict(image_size=c['image_resolution'], layers=c['vision_layers'],
                        width=c['vision_width'], patch_size=c['vision_patch_size'],
                        head_width=64),
        text_cfg=dict(context_length=c['context_length'], vocab_size=c['vocab_size'],
                      width=c['transformer_width'], heads=c['transformer_heads'],
                      layers=c['transformer_layers']))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    authors = dict(layout['keys'])
    assert authors.pop('visual.mask_embedding')[0] == c['mask_prompt_depth']
    assert authors == ours
    state = {k: torch.zeros(s) for k, s in layout['keys'].items()}
    clip, prompts = conv.convert_ovseg_clip(state)
    model.load_state_dict(clip, strict=True)
    assert list(prompts['mask_prompts'].shape) == layout['keys']['visual.mask_embedding']
