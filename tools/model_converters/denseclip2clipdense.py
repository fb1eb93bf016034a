"""Convert the DenseCLIP authors' released checkpoints to clipdense.

    python tools/model_converters/denseclip2clipdense.py denseclip_fpn_res50.pth \
        work_dirs/denseclip_fpn_res50_clipdense.pth
    python tools/test.py configs/denseclip/denseclip_rn50-openai_8xb4-80k_ade20k-512x512.py \
        work_dirs/denseclip_fpn_res50_clipdense.pth

Input: a checkpoint of raoyongming/DenseCLIP, segmentation (mmseg 0.x
``DenseCLIP``: ``denseclip_fpn_res50.pth``, ``..._res101.pth``,
``..._vit-b.pth``) or detection (mmdet 2.x ``DenseCLIP_RetinaNet`` /
``DenseCLIP_MaskRCNN``). It is read with ``torch.load(weights_only=True)``
(:func:`clipdense.engine.checkpoint.safe_torch_load`): nothing in the file is
executed; a file that needs more than plain weights is refused with the
opt-in named.

Output: an MMEngine checkpoint (``state_dict`` + ``meta``) for clipdense's
paper configs (``configs/denseclip/denseclip_*``,
``configs/denseclip_det/denseclip-*``), which build the model as the
authors' code does (``pos_embed_mode='bilinear-once-trainable'`` /
``'bilinear-once-crop'``, ``attn_impl='denseclip'``, ViT ``pyramid_norm``
and ``class_embed_twice``), so that it loads with ``strict=True``:

===================================  =========================================
authors' key                          clipdense key
===================================  =========================================
``backbone.X`` (CLIP image tower)     ``backbone.visual.X`` (open_clip layout,
                                      incl. the trained positional table)
``backbone.fpnN.*`` (ViT pyramid)     ``backbone.pyramid.fpnN.*``
``text_encoder.X``                    ``text_encoder.X``; the positional table
                                      (13 rows) padded with zero rows to the
                                      arch's 77 (never read: DenseCLIP uses
                                      the first 8 + 5 positions);
                                      ``text_encoder.logit_scale`` (unused by
                                      DenseCLIP) set to ln(1/0.07)
``context_decoder.memory_proj.0/1/2`` ``context_decoder.memory_proj.norm_in/
                                      linear/norm_out``
``context_decoder.text_proj.0/1``     ``context_decoder.query_proj.norm_in/
                                      linear``
``context_decoder.decoder.I.*``       ``context_decoder.layers.I.*``
``context_decoder.out_proj.0/1``      ``context_decoder.out_proj.norm_in/
                                      linear``
``contexts``, ``gamma``               unchanged
``neck.*``, ``decode_head.*``,        unchanged (mmseg 0.x -> 1.x and mmdet
``auxiliary_head.*``,                 2.x -> 3.x use the same parameter names
``identity_head.*``, ``bbox_head.*``, for FPN, FPNHead, RetinaHead, RPNHead
``rpn_head.*``, ``roi_head.*``        and the standard RoI heads)
===================================  =========================================

Any other key is refused with its name: the output would silently lack it.
"""
import argparse
import io
import math
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

PASS_THROUGH = ('neck.', 'decode_head.', 'auxiliary_head.', 'identity_head.',
                'bbox_head.', 'rpn_head.', 'roi_head.')
DECODER_SEQ = {
    'memory_proj': ('norm_in', 'linear', 'norm_out'),
    'text_proj': ('norm_in', 'linear'),
    'out_proj': ('norm_in', 'linear'),
}
LOGIT_SCALE_INIT = math.log(1 / 0.07)


class UnmappableKeysError(ValueError):
    """The checkpoint holds keys the converter has no clipdense place for."""


def _decoder_key(rest: str) -> str:
    m = re.match(r'(memory_proj|text_proj|out_proj)\.(\d+)\.(.+)$', rest)
    if m:
        seq, idx, tail = m.group(1), int(m.group(2)), m.group(3)
        names = DECODER_SEQ[seq]
        if idx >= len(names):
            raise UnmappableKeysError(f'context_decoder.{rest}')
        seq = 'query_proj' if seq == 'text_proj' else seq
        return f'{seq}.{names[idx]}.{tail}'
    m = re.match(r'decoder\.(\d+)\.(.+)$', rest)
    if m:
        return f'layers.{m.group(1)}.{m.group(2)}'
    raise UnmappableKeysError(f'context_decoder.{rest}')


def convert_state_dict(state: Dict[str, torch.Tensor], text_context_length: int = 77
                       ) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Map an authors' DenseCLIP state dict to clipdense's key layout.

    Args:
        state (dict): the authors' ``state_dict`` (a leading ``module.`` of
            DDP is dropped).
        text_context_length (int): positional rows of the clipdense text
            tower (77 for CLIP; the arch's ``text_cfg.context_length``).

    Returns:
        tuple: the converted state dict and notes on what was filled in.

    Raises:
        UnmappableKeysError: keys without a clipdense place (listed).
    """
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    notes: List[str] = []
    bad: List[str] = []
    vit = 'backbone.class_embedding' in state or 'module.backbone.class_embedding' in state
    for key, value in state.items():
        k = key[len('module.'):] if key.startswith('module.') else key
        if not isinstance(value, torch.Tensor):
            bad.append(f'{key} (not a tensor)')
            continue
        if k.startswith('backbone.'):
            rest = k[len('backbone.'):]
            if vit and re.match(r'fpn[1-4](\.|$)', rest):
                out[f'backbone.pyramid.{rest}'] = value
            else:
                out[f'backbone.visual.{rest}'] = value
        elif k.startswith('text_encoder.'):
            rest = k[len('text_encoder.'):]
            if rest == 'positional_embedding' and value.shape[0] < text_context_length:
                pad = value.new_zeros(text_context_length - value.shape[0], value.shape[1])
                notes.append(f'text_encoder.positional_embedding: {value.shape[0]} rows '
                             f'padded with zeros to {text_context_length} (rows past '
                             f'{value.shape[0]} are never read by DenseCLIP)')
                value = torch.cat([value, pad], dim=0)
            elif rest == 'positional_embedding' and value.shape[0] > text_context_length:
                bad.append(f'{key} ({value.shape[0]} rows > the text tower\'s '
                           f'{text_context_length}; pass --text-context-length)')
                continue
            out[k] = value
        elif k.startswith('context_decoder.'):
            try:
                out['context_decoder.' + _decoder_key(k[len('context_decoder.'):])] = value
            except UnmappableKeysError:
                bad.append(key)
        elif k in ('contexts', 'gamma') or k.startswith(PASS_THROUGH):
            out[k] = value
        else:
            bad.append(key)
    if bad:
        raise UnmappableKeysError(
            f'{len(bad)} key(s) of the DenseCLIP checkpoint have no place in clipdense: '
            + ', '.join(bad[:20]) + (' ...' if len(bad) > 20 else '')
            + '. Is this a raoyongming/DenseCLIP DenseCLIP / DenseCLIP_RetinaNet / '
            'DenseCLIP_MaskRCNN checkpoint? Nothing was written.')
    for need in ('backbone.', 'text_encoder.', 'context_decoder.'):
        if not any(k.startswith(need) for k in out):
            raise UnmappableKeysError(
                f'no {need}* keys: this is not a DenseCLIP checkpoint (the CLIP+FPN '
                'baselines need no conversion beyond mmseg\'s own)')
    if 'text_encoder.logit_scale' not in out:
        ref = out['text_encoder.text_projection']
        out['text_encoder.logit_scale'] = torch.tensor(LOGIT_SCALE_INIT, dtype=ref.dtype)
        notes.append('text_encoder.logit_scale (unused by DenseCLIP) set to ln(1/0.07)')
    return out, notes


def load_denseclip_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of an authors' checkpoint, read safely."""
    from clipdense.fileio import safe_torch_load
    ckpt = safe_torch_load(path, map_location='cpu')
    if isinstance(ckpt, dict) and 'state_dict' in ckpt:
        ckpt = ckpt['state_dict']
    if not isinstance(ckpt, dict):
        raise UnmappableKeysError(f'{path} holds a {type(ckpt).__name__}, not a state dict')
    return ckpt


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog='Evaluate with: python tools/test.py <paper config> <output>')
    parser.add_argument('src', help="the authors' checkpoint (.pth)")
    parser.add_argument('dst', help='clipdense checkpoint to write (.pth)')
    parser.add_argument('--text-context-length', type=int, default=77,
                        help="positional rows of clipdense's text tower (CLIP: 77)")
    args = parser.parse_args(argv)
    state = load_denseclip_checkpoint(args.src)
    converted, notes = convert_state_dict(state, args.text_context_length)
    for note in notes:
        print('note:', note)
    from clipdense.fileio import atomic_write_bytes
    buf = io.BytesIO()
    torch.save({'state_dict': converted,
                'meta': {'converted_from': str(args.src),
                         'converter': 'tools/model_converters/denseclip2clipdense.py'}},
               buf)
    atomic_write_bytes(args.dst, buf.getvalue())
    print(f'wrote {len(converted)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
