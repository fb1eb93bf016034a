"""Open-vocabulary segmentation of one image with your own class names.

    python demo/image_demo.py demo/demo.png \
        configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py \
        --vocabulary "ball,spoon,sky,grass,road" --out-file out.png --device cpu

Writes an overlay (same size as the image) with a legend of the classes
present. ``demo/demo.png`` is validation image flat_val_00002 of the
synthetic world (``generate_world(seed=0)``, 128 px).
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('img', help='image file')
    p.add_argument('config', help='model config')
    p.add_argument('checkpoint', nargs='?', default=None, help='checkpoint (optional)')
    p.add_argument('--vocabulary', default=None,
                   help='comma-separated class names, e.g. "cat,dog,grass" '
                   "(default: the config's vocabulary)")
    p.add_argument('--out-file', default='out.png', help='output overlay (PNG)')
    p.add_argument('--out-mask', default=None,
                   help='optional: also write the label map (uint8 PNG of indices)')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    p.add_argument('--opacity', type=float, default=0.5,
                   help='mask opacity in [0, 1]')
    p.add_argument('--cfg-options', nargs='+', default=None,
                   help='config overrides key=value (mmengine DictAction)')
    return p


def parse_vocabulary_arg(text):
    """Split "a,b,c" into names; refuse empty or repeated names."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(',')]
    if not any(names):
        raise ValueError('the vocabulary is empty: give class names, e.g. '
                         '--vocabulary "cat,dog,grass"')
    empty = [i for i, n in enumerate(names) if not n]
    if empty:
        raise ValueError(f'the vocabulary {text!r} has empty names (positions {empty})')
    seen, dups = set(), []
    for n in names:
        if n.lower() in seen:
            dups.append(n)
        seen.add(n.lower())
    if dups:
        raise ValueError(f'the vocabulary repeats class names: {sorted(set(dups))}')
    return names


def draw_overlay(img_bgr, seg, classes, palette, opacity=0.5):
    """Blend the label map over the image and draw a legend of the classes
    present (top-left, inside the image; the output keeps the image size)."""
    import cv2
    h, w = seg.shape
    pal = np.asarray(palette, dtype=np.uint8)[:, ::-1]  # RGB -> BGR
    color = pal[np.clip(seg, 0, len(pal) - 1)]
    out = img_bgr.astype(np.float32) * (1 - opacity) + color.astype(np.float32) * opacity
    out = out.round().astype(np.uint8)
    present = [int(c) for c in np.unique(seg) if 0 <= c < len(classes)]
    # legend: one row per present class, scaled to the image
    scale = max(0.25, min(h, w) / 400.0)
    thick = 1
    (tw, th), base = cv2.getTextSize('Ag', cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    row = th + base + 2
    box = row - 2
    y = 2
    for c in present:
        if y + row > h:
            break
        name = str(classes[c])
        (nw, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        x1 = min(w - 1, 2 + box + 3 + nw + 2)
        # dark backing for legibility
        out[y:y + row - 1, 1:x1] = (out[y:y + row - 1, 1:x1] * 0.3).astype(np.uint8)
        cv2.rectangle(out, (2, y), (2 + box - 1, y + box - 1),
                      tuple(int(v) for v in pal[c]), thickness=-1)
        cv2.putText(out, name, (2 + box + 3, y + th), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), thick, cv2.LINE_AA)
        y += row
    return out, present


def main(argv=None):
    args = parse_args().parse_args(argv)
    try:
        vocabulary = parse_vocabulary_arg(args.vocabulary)
        if not 0.0 <= args.opacity <= 1.0:
            raise ValueError(f'--opacity must be in [0, 1], got {args.opacity}')
        from clipdense.apis import inference_model, init_model, load_image
        img = load_image(args.img)  # clear error for a non-image before building
    except (ValueError, FileNotFoundError, TypeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    cfg_options = None
    if args.cfg_options:
        from mmengine.config import DictAction
        ns = argparse.Namespace()
        DictAction(option_strings=[], dest='o')(None, ns, args.cfg_options)
        cfg_options = ns.o
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=cfg_options)
    try:
        result = inference_model(model, img, vocabulary=vocabulary)
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    import cv2
    seg = result.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
    classes = model.dataset_meta['classes']
    overlay, present = draw_overlay(img, seg, classes, model.dataset_meta['palette'],
                                    args.opacity)
    out_dir = osp.dirname(osp.abspath(args.out_file))
    os.makedirs(out_dir, exist_ok=True)
    if not cv2.imwrite(args.out_file, overlay):
        print(f'error: could not write {args.out_file}', file=sys.stderr)
        return 2
    if args.out_mask:
        os.makedirs(osp.dirname(osp.abspath(args.out_mask)), exist_ok=True)
        cv2.imwrite(args.out_mask, seg.astype(np.uint8))
    print(f'wrote {args.out_file} ({overlay.shape[1]}x{overlay.shape[0]}); classes '
          f'present: {[classes[c] for c in present]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
