"""Convert the released OVSeg weights (Liang et al., CVPR 2023) to clipdense.

Two kinds of file:

1. ``seg`` -- the detectron2 checkpoint of the whole model
   (``ovseg_swinbase_vitL14_ft_mpt.pth``: ``{"model": state_dict, ...}``):
   Swin-B backbone, MaskFormer pixel decoder and transformer predictor with
   the open-vocabulary class MLP, and the (mask-adapted) CLIP ViT-L/14 with
   its mask prompts and the no-object embedding. The output is an
   MMEngine checkpoint (``{"state_dict", "meta"}``) for the paper configs
   (``configs/ovseg/ovseg_swin-b_vit-l14-openai_*``): load it with
   ``tools/test.py CONFIG OUT`` (strict).
2. ``clip`` -- a checkpoint of the authors' CLIP adaptation
   (``open_clip_training``: ``{"state_dict": {"module.visual...": ...}}``,
   or a bare state dict): written as an open_clip state dict
   (``pretrained=`` of ``MaskedCropCLIP`` / ``OpenCLIPTextEncoder``) and, when
   it holds mask prompts (``visual.mask_embedding``), a prompt file
   (``prompt_weights=``).

::

    python tools/model_converters/ovseg2clipdense.py seg ovseg_swinbase_vitL14_ft_mpt.pth ovseg_clipdense.pth
    python tools/model_converters/ovseg2clipdense.py clip epoch_5.pt clip_ft.pt [--prompts prompts.pt]

Files are read with clipdense's safe loader (``weights_only``: no code in a
pickle runs; a file that needs more is refused). Every source key is either
mapped or listed as known to be unused (buffers recomputed by clipdense,
the loss's class weights, the CLIP adapter's pixel statistics); any other
key is refused with its name, so nothing is silently dropped.

Key mapping (authors -> clipdense):

- ``backbone.*`` (the official Swin layout detectron2 wraps) -> mmseg's
  ``SwinTransformer``: ``layers`` -> ``stages``, ``attn`` -> ``attn.w_msa``,
  ``mlp.fc1``/``fc2`` -> ``ffn.layers.0.0``/``ffn.layers.1``,
  ``patch_embed.proj`` -> ``patch_embed.projection``; the patch-merging
  reduction and norm are re-ordered (the official code concatenates the 2x2
  neighbours as (0,0), (1,0), (0,1), (1,1); mmseg's ``nn.Unfold`` gives
  channel-major (0,0), (0,1), (1,0), (1,1)).
- ``sem_seg_head.pixel_decoder``: ``adapter_i``/``layer_i`` (i = 1..3) ->
  ``lateral_convs``/``output_convs`` ``i-1``, ``layer_4`` ->
  ``last_feat_conv``, ``mask_features`` -> ``mask_feature``; a conv's
  ``norm`` -> ``gn``.
- ``sem_seg_head.predictor``: decoder layers (``self_attn``,
  ``multihead_attn``, ``linear1/2``, ``norm1..3``) -> mmdet's DETR decoder
  (``self_attn.attn``, ``cross_attn.attn``, ``ffn``, ``norms.0..2``),
  ``decoder.norm`` -> ``post_norm``, ``input_proj`` -> ``decoder_input_proj``,
  ``class_embed.layers.0/1`` -> ``cls_embed.proj.0/2``,
  ``mask_embed.layers.0/1/2`` -> ``mask_embed.0/2/4``.
- ``clip_adapter.clip_model.*`` (OpenAI layout = open_clip's): ``visual.*``
  -> ``decode_head.clip_classifier.tower.visual.*``,
  ``visual.mask_embedding`` -> ``decode_head.clip_classifier.mask_prompts``,
  the text tower -> ``decode_head.text_encoder.*``;
  ``clip_adapter.non_object_embedding`` -> ``decode_head.cls_embed.null_embed``.
"""
import argparse
import io
import re
from typing import Dict, List, Tuple

import torch

SEG_PREFIX = 'decode_head.'
# source keys that hold nothing clipdense needs
_UNUSED = (
    re.compile(r'^criterion\.empty_weight$'),  # CE class weights (config: no-object 0.1)
    re.compile(r'^pixel_(mean|std)$'),  # data_preprocessor of the config
    re.compile(r'^clip_adapter\.pixel_(mean|std)$'),  # CLIP's mean/std (fixed)
    re.compile(r'^clip_adapter\.clip_model\.(input_resolution|context_length|vocab_size)$'),
)
_CLIP_TEXT = ('transformer.', 'token_embedding.', 'positional_embedding', 'ln_final.',
              'text_projection', 'logit_scale')


class UnmappableKeyError(KeyError):
    """Source keys that have no place in clipdense's model."""

    def __str__(self):
        return self.args[0] if self.args else ''


def unfold_reduction_order(w: torch.Tensor) -> torch.Tensor:
    """Patch-merging reduction weight ``(out, 4C)`` from the official
    concatenation order (neighbour-major: x[0::2,0::2], x[1::2,0::2],
    x[0::2,1::2], x[1::2,1::2]) to ``nn.Unfold``'s (channel-major, kernel
    positions (0,0), (0,1), (1,0), (1,1))."""
    out, c4 = w.shape
    c = c4 // 4
    w = w.reshape(out, 4, c)[:, [0, 2, 1, 3], :]  # neighbours in unfold order
    return w.permute(0, 2, 1).reshape(out, c4)  # channel-major


def unfold_norm_order(v: torch.Tensor) -> torch.Tensor:
    """The same re-ordering for the patch-merging norm ``(4C,)``."""
    c = v.shape[0] // 4
    return v.reshape(4, c)[[0, 2, 1, 3], :].t().reshape(-1)


def _swin_key(k: str, v: torch.Tensor) -> Tuple[str, torch.Tensor]:
    if k.startswith('patch_embed.proj.'):
        return 'patch_embed.projection.' + k[len('patch_embed.proj.'):], v
    if k.startswith('patch_embed.norm.') or re.match(r'^norm\d+\.', k) or \
            k == 'absolute_pos_embed':
        return k, v
    m = re.match(r'^layers\.(\d+)\.(.*)$', k)
    if not m:
        raise KeyError(k)
    stage, rest = m.groups()
    if rest.startswith('downsample.reduction.'):
        v = unfold_reduction_order(v)
    elif rest.startswith('downsample.norm.'):
        v = unfold_norm_order(v)
    elif re.match(r'^blocks\.\d+\.attn\.', rest):
        rest = rest.replace('.attn.', '.attn.w_msa.', 1)
    elif re.match(r'^blocks\.\d+\.mlp\.fc1\.', rest):
        rest = rest.replace('.mlp.fc1.', '.ffn.layers.0.0.', 1)
    elif re.match(r'^blocks\.\d+\.mlp\.fc2\.', rest):
        rest = rest.replace('.mlp.fc2.', '.ffn.layers.1.', 1)
    elif not re.match(r'^blocks\.\d+\.norm[12]\.', rest):
        raise KeyError(k)
    return f'stages.{stage}.{rest}', v


def _pixel_decoder_key(k: str) -> str:
    m = re.match(r'^(adapter|layer)_(\d+)\.(weight|bias|norm\.weight|norm\.bias)$', k)
    if m:
        kind, idx, rest = m.groups()
        idx = int(idx)
        rest = rest.replace('norm.', 'gn.') if rest.startswith('norm.') else 'conv.' + rest
        if kind == 'layer' and idx == 4:
            return 'pixel_decoder.last_feat_conv.' + rest
        if 1 <= idx <= 3:
            group = 'lateral_convs' if kind == 'adapter' else 'output_convs'
            return f'pixel_decoder.{group}.{idx - 1}.{rest}'
    m = re.match(r'^mask_features\.(weight|bias)$', k)
    if m:
        return 'pixel_decoder.mask_feature.' + m.group(1)
    raise KeyError(k)


_DEC_LAYER = {
    'self_attn.in_proj_weight': 'self_attn.attn.in_proj_weight',
    'self_attn.in_proj_bias': 'self_attn.attn.in_proj_bias',
    'self_attn.out_proj.weight': 'self_attn.attn.out_proj.weight',
    'self_attn.out_proj.bias': 'self_attn.attn.out_proj.bias',
    'multihead_attn.in_proj_weight': 'cross_attn.attn.in_proj_weight',
    'multihead_attn.in_proj_bias': 'cross_attn.attn.in_proj_bias',
    'multihead_attn.out_proj.weight': 'cross_attn.attn.out_proj.weight',
    'multihead_attn.out_proj.bias': 'cross_attn.attn.out_proj.bias',
    'linear1.weight': 'ffn.layers.0.0.weight',
    'linear1.bias': 'ffn.layers.0.0.bias',
    'linear2.weight': 'ffn.layers.1.weight',
    'linear2.bias': 'ffn.layers.1.bias',
    'norm1.weight': 'norms.0.weight', 'norm1.bias': 'norms.0.bias',
    'norm2.weight': 'norms.1.weight', 'norm2.bias': 'norms.1.bias',
    'norm3.weight': 'norms.2.weight', 'norm3.bias': 'norms.2.bias',
}


def _predictor_key(k: str) -> str:
    m = re.match(r'^transformer\.decoder\.layers\.(\d+)\.(.*)$', k)
    if m and m.group(2) in _DEC_LAYER:
        return f'transformer_decoder.layers.{m.group(1)}.{_DEC_LAYER[m.group(2)]}'
    m = re.match(r'^transformer\.decoder\.norm\.(weight|bias)$', k)
    if m:
        return 'transformer_decoder.post_norm.' + m.group(1)
    m = re.match(r'^(query_embed\.weight|input_proj\.(weight|bias))$', k)
    if m:
        return k.replace('input_proj.', 'decoder_input_proj.')
    m = re.match(r'^class_embed\.layers\.([01])\.(weight|bias)$', k)
    if m:
        return f'cls_embed.proj.{2 * int(m.group(1))}.{m.group(2)}'
    m = re.match(r'^mask_embed\.layers\.([012])\.(weight|bias)$', k)
    if m:
        return f'mask_embed.{2 * int(m.group(1))}.{m.group(2)}'
    raise KeyError(k)


def _clip_key(k: str, v: torch.Tensor) -> List[Tuple[str, torch.Tensor]]:
    """An OpenAI-layout CLIP key -> clipdense head keys (empty: nothing)."""
    if k == 'visual.mask_embedding':
        return [(SEG_PREFIX + 'clip_classifier.mask_prompts', v)] if v.numel() else []
    if k.startswith('visual.'):
        return [(SEG_PREFIX + 'clip_classifier.tower.' + k, v)]
    if k.startswith(_CLIP_TEXT):
        return [(SEG_PREFIX + 'text_encoder.' + k, v)]
    raise KeyError(k)


def convert_ovseg_seg(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor],
                                                                List[str]]:
    """The authors' detectron2 ``model`` state dict -> clipdense's ``OVSeg``.

    Returns:
        tuple: the converted state dict and the source keys left out on
        purpose (:data:`_UNUSED`).

    Raises:
        UnmappableKeyError: keys with no clipdense counterpart (listed).
    """
    out: Dict[str, torch.Tensor] = {}
    unused, bad = [], []
    for k, v in state.items():
        if any(p.match(k) for p in _UNUSED):
            unused.append(k)
            continue
        try:
            if k.startswith('backbone.'):
                nk, nv = _swin_key(k[len('backbone.'):], v)
                pairs = [('backbone.' + nk, nv)]
            elif k.startswith('sem_seg_head.pixel_decoder.'):
                pairs = [(SEG_PREFIX + _pixel_decoder_key(k[len('sem_seg_head.pixel_decoder.'):]),
                          v)]
            elif k.startswith('sem_seg_head.predictor.'):
                pairs = [(SEG_PREFIX + _predictor_key(k[len('sem_seg_head.predictor.'):]), v)]
            elif k.startswith('clip_adapter.clip_model.'):
                pairs = _clip_key(k[len('clip_adapter.clip_model.'):], v)
            elif k == 'clip_adapter.non_object_embedding':
                pairs = [(SEG_PREFIX + 'cls_embed.null_embed', v.reshape(-1))]
            else:
                raise KeyError(k)
        except KeyError:
            bad.append(k)
            continue
        for nk, nv in pairs:
            if nk in out:
                raise UnmappableKeyError(f'two source keys map to {nk}')
            out[nk] = nv
    if bad:
        raise UnmappableKeyError(
            f'{len(bad)} keys of the OVSeg checkpoint have no place in clipdense\'s OVSeg: '
            f'{bad[:20]}{" ..." if len(bad) > 20 else ""}. Is this the detectron2 checkpoint '
            'of the authors\' OVSeg (Swin or ResNet backbone keys other than Swin, a '
            'transformer encoder in the predictor, or another model are not supported)?')
    if not any(k.startswith('backbone.') for k in out):
        raise UnmappableKeyError('no backbone weights found: not an OVSeg detectron2 '
                                 'checkpoint (expected keys "backbone.layers.*")')
    return out, unused


def convert_ovseg_clip(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor],
                                                                Dict[str, torch.Tensor]]:
    """The authors' adapted CLIP (open_clip_training checkpoint) -> an
    open_clip state dict and ``{'mask_prompts': ...}`` (empty without
    prompts).

    Raises:
        UnmappableKeyError: keys that are not an open_clip CLIP's.
    """
    clip, prompts, bad = {}, {}, []
    for k, v in state.items():
        k = k[len('module.'):] if k.startswith('module.') else k
        if k == 'visual.mask_embedding':
            if v.numel():
                prompts['mask_prompts'] = v
            continue
        if k.startswith('visual.') or k.startswith(_CLIP_TEXT):
            clip[k] = v
        else:
            bad.append(k)
    if bad:
        raise UnmappableKeyError(
            f'{len(bad)} keys are not weights of an open_clip CLIP: {bad[:20]}'
            f'{" ..." if len(bad) > 20 else ""} (expected the "state_dict" of an '
            'open_clip_training checkpoint)')
    if not any(k.startswith('visual.') for k in clip):
        raise UnmappableKeyError('no image-tower weights ("visual.*") found')
    return clip, prompts


def load_source(path: str, entry: str) -> Dict[str, torch.Tensor]:
    """Read a checkpoint safely and return its ``entry`` (or the state dict
    itself when it is one)."""
    from clipdense.fileio import safe_torch_load
    ckpt = safe_torch_load(path, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} holds a {type(ckpt).__name__}, not a checkpoint dict')
    if entry in ckpt and isinstance(ckpt[entry], dict):
        ckpt = ckpt[entry]
    tensors = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f'{path} has no tensors (under "{entry}" or at the top level)')
    return tensors


def _save(obj, path: str):
    from clipdense.fileio import atomic_write_bytes
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='kind', required=True)
    p = sub.add_parser('seg', help='the detectron2 OVSeg checkpoint')
    p.add_argument('src')
    p.add_argument('out', help='MMEngine checkpoint for the OVSeg paper configs')
    p = sub.add_parser('clip', help='an adapted CLIP of open_clip_training')
    p.add_argument('src')
    p.add_argument('out', help='open_clip state dict (pretrained=)')
    p.add_argument('--prompts', help='where to write the mask prompts (prompt_weights=)')
    args = parser.parse_args(argv)
    if args.kind == 'seg':
        state, unused = convert_ovseg_seg(load_source(args.src, 'model'))
        _save({'state_dict': state, 'meta': {'converted_from': args.src,
                                             'converter': 'ovseg2clipdense.py'}}, args.out)
        print(f'wrote {len(state)} tensors to {args.out} (left out: {unused})')
    else:
        clip, prompts = convert_ovseg_clip(load_source(args.src, 'state_dict'))
        _save(clip, args.out)
        print(f'wrote {len(clip)} tensors to {args.out}')
        if prompts:
            if not args.prompts:
                raise SystemExit(f'{args.src} holds mask prompts '
                                 f'{tuple(prompts["mask_prompts"].shape)}: pass --prompts '
                                 'PATH to keep them')
            _save(prompts, args.prompts)
            print(f'wrote mask prompts {tuple(prompts["mask_prompts"].shape)} to '
                  f'{args.prompts}')


if __name__ == '__main__':
    main()
