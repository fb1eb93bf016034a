"""MaskCLIP on the synthetic world with the tiny CLIP, no pixel labels used:
writes ``results/maskclip_synthetic.{md,json}``.

    python tools/analysis_tools/bench_maskclip.py [--styles flat textured night fog]

Every row classifies dense joint-space features of the world's tiny CLIP
ResNet (``work_dirs/quickstart/tiny_clip.pt``, from ``make quickstart``) by
their cosine with the text embeddings of the 13 class names (temperature
100); labels are used only to score the predictions. Rows:

* **chance** - the expected mIoU of labels drawn uniformly at random from
  the K classes, independently per pixel, given the evaluated pixels' class
  frequencies ``f_c``: ``IoU_c = E[I_c] / E[U_c]`` with
  ``E[I_c] = N f_c / K`` and ``E[U_c] = N f_c + N / K - N f_c / K``, i.e.
  ``IoU_c = f_c / (K f_c + 1 - f_c)`` (the ratio of expectations, exact as
  the pixel count N grows), averaged over all K classes like mmseg's
  IoUMetric (a class absent from the ground truth but predicted scores 0).
* **naive dense baseline** - CLIP's attention pool evaluated at every C5
  position: each position is a query of the full pooling attention (q/k/v/c
  projections, positional table, softmax over all positions; the
  ``'dense'`` output of ``OpenCLIPResNet``, MaskCLIP's ``attn_pooling=True``
  and DenseCLIP's per-pixel path). For a ViT the same baseline is ``ln_post``
  + ``proj`` on every token after the normal last block. No value path.
* **MaskCLIP** - the value path ``c_proj(v_proj(x))`` per position (query,
  key and positional table dropped; ``'value'``), optionally with key
  smoothing (keys ``k_proj(x)`` of the attention pool per position, as
  MaskCLIP's code does for its ResNets) and prompt denoising.
* **oracle at the feature resolution** - not a method: the ground truth's
  majority label per feature cell, upsampled; the best any per-cell
  classifier can score at that resolution (a diagnostic of the 4x4 C5 map
  of a 128 px input).

The paper-faithful rows use MaskCLIP's 85 templates with the plain class
names, the whole 128 px image. The selection table varies the input scale
(test-time resize; whole image or sliding 128 px windows, the tiny CLIP's
training size) and the text (TEXT_VARIANTS: template sets, and the class
names phrased as in the tiny CLIP's captions); the setting is chosen on the
*train* split (labels used only for that choice) and reported on val.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')

# Text variants compared: (names, templates); ``None`` names = the 13 class
# names as they are. 'caption-grammar' phrases every class the way the tiny
# CLIP's captions do (clipdense/datasets/synthetic/captions.py): things with
# their article ("a ball"), stuff as the captions' background phrases
# ("under the sky", "on the grass", "on a road"), in the captions'
# sentence frames.
THING_NAMES = ['a ' + c for c in ('ball', 'cup', 'bottle', 'knife', 'hammer', 'key',
                                  'mug', 'spoon', 'racket', 'scissors')]
TEXT_VARIANTS = OrderedDict([
    ('single', (None, ['a photo of a {}.'])),
    ('caption-frames', (None, ['a photo of a {}.', 'a picture of a {}.', 'there is a {}.'])),
    ('imagenet', (None, 'imagenet')),
    ('maskclip', (None, 'maskclip')),
    ('caption-grammar', (THING_NAMES + ['under the sky', 'on the grass', 'on a road'],
                         ['a photo of {}.', 'a picture of {}.', 'there is {}.', '{}.'])),
])


def log(msg):
    print(f'[bench_maskclip] {msg}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# data
def list_split(data_root, style, split, limit=None):
    img_dir = osp.join(data_root, style, 'img_dir', split)
    ann_dir = osp.join(data_root, style, 'ann_dir', split)
    names = sorted(n for n in os.listdir(img_dir) if n.endswith('.png'))
    if limit:
        names = names[:limit]
    return [(osp.join(img_dir, n), osp.join(ann_dir, n)) for n in names]


def load_pairs(pairs):
    import cv2
    out = []
    for img_path, ann_path in pairs:
        img = cv2.imread(img_path, cv2.IMREAD_COLOR)
        gt = cv2.imread(ann_path, cv2.IMREAD_UNCHANGED)
        if img is None or gt is None:
            raise ValueError(f'cannot read {img_path} / {ann_path}')
        out.append((img, gt.astype(np.int64)))
    return out


# ---------------------------------------------------------------------------
# metrics
def confusion(gt, pred, k, ignore=255):
    valid = gt != ignore
    return np.bincount(gt[valid] * k + pred[valid], minlength=k * k).reshape(k, k)


def accuracies(conf, things):
    """Pixel accuracy over all labelled pixels and over thing pixels (%)."""
    d = np.diag(conf)
    return (float(d.sum() / max(conf.sum(), 1) * 100),
            float(d[things].sum() / max(conf[things].sum(), 1) * 100))


def iou_from_confusion(conf):
    """Per-class IoU (nan where a class is neither in the ground truth nor
    predicted) and mIoU (nan-mean, as mmseg's IoUMetric), in percent."""
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - np.diag(conf)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = inter / union
    return iou * 100, float(np.nanmean(iou) * 100)


def chance_miou(freq_counts):
    """Expected mIoU (percent) of uniform random labels over K classes given
    ground-truth pixel counts per class (see the module docstring)."""
    counts = np.asarray(freq_counts, dtype=np.float64)
    k = len(counts)
    f = counts / counts.sum()
    inter = f / k
    union = f + 1.0 / k - f / k
    iou = inter / union  # 0 for a class absent from the ground truth
    return iou * 100, float(iou.mean() * 100)


# ---------------------------------------------------------------------------
# model
def build(weights):
    from clipdense.apis import init_model
    opts = {
        'model.backbone.pretrained': weights,
        'model.backbone.joint_outputs': ('value', 'dense'),
        'model.decode_head.text_encoder.pretrained': weights,
    }
    return init_model(CONFIG, device='cpu', cfg_options=opts)


def preprocess(model, img_bgr, scale):
    import cv2
    if scale != 1:
        h, w = img_bgr.shape[:2]
        img_bgr = cv2.resize(img_bgr, (int(round(w * scale)), int(round(h * scale))),
                             interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(np.ascontiguousarray(img_bgr)).permute(2, 0, 1)
    data = model.data_preprocessor(dict(inputs=[x]), False)
    return data['inputs']


@torch.no_grad()
def features(model, x):
    """Dense features of a (1, 3, H, W) input: value, naive dense, keys
    (each (1, C, h, w))."""
    *feats, joint = model.backbone(x)
    c5 = feats[-1]
    ap = model.backbone.visual.attnpool
    keys = ap.k_proj(c5.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return dict(value=joint['value'], dense=joint['dense'], keys=keys)


def windows(h, w, crop, stride):
    ys = list(range(0, max(h - crop, 0) + 1, stride))
    xs = list(range(0, max(w - crop, 0) + 1, stride))
    if ys[-1] + crop < h:
        ys.append(h - crop)
    if xs[-1] + crop < w:
        xs.append(w - crop)
    return [(y, x) for y in ys for x in xs]


@torch.no_grad()
def image_feats(model, img, scale, mode, crop=128):
    """Features of one image at a scale: whole (one input) or sliding
    ``crop`` windows with stride 2/3 crop (batched). Returns the feature
    dict (batch = windows), the window corners and the scaled size."""
    x = preprocess(model, img, scale)
    H, W = x.shape[-2:]
    if mode == 'whole' or (H <= crop and W <= crop):
        return features(model, x), [(0, 0)], (H, W), (H, W)
    ch, cw = min(crop, H), min(crop, W)
    corners = [(y, x0) for y in [c[0] for c in windows(H, crop, ch, ch * 2 // 3)]
               for x0 in [c[0] for c in windows(W, crop, cw, cw * 2 // 3)]]
    batch = torch.cat([x[..., y:y + ch, x0:x0 + cw] for y, x0 in corners])
    return features(model, batch), corners, (H, W), (ch, cw)


@torch.no_grad()
def predict(head, text, feats, out_hw, kind='value', ks=0.0, pd=0.0):
    """Label map (out_hw) from cached features: cosine logits, MaskCLIP's
    refinements (per window), bilinear upsampling, averaging of the
    windows' log-probabilities (as mmseg's slide inference)."""
    f, corners, (H, W), (ch, cw) = feats
    feat = F.normalize(f[kind], dim=1)
    logits = torch.einsum('bdhw,kd->bkhw', feat, text) * head.logit_scale
    head.ks_thresh, head.pd_thresh = ks, pd
    try:
        lp = head.refine(logits, f['keys'] if ks > 0 else None)
    finally:
        head.ks_thresh = head.pd_thresh = 0.0
    if len(corners) == 1:
        lp = F.interpolate(lp, size=tuple(out_hw), mode='bilinear', align_corners=False)
        return lp.argmax(1)[0].numpy()
    up = F.interpolate(lp, size=(ch, cw), mode='bilinear', align_corners=False)
    acc = torch.zeros(lp.shape[1], H, W)
    cnt = torch.zeros(1, H, W)
    for i, (y, x) in enumerate(corners):
        acc[:, y:y + ch, x:x + cw] += up[i]
        cnt[:, y:y + ch, x:x + cw] += 1
    lp = F.interpolate((acc / cnt)[None], size=tuple(out_hw), mode='bilinear',
                       align_corners=False)
    return lp.argmax(1)[0].numpy()


def oracle(gt, cell, k):
    """Majority ground-truth label per ``cell x cell`` block, upsampled."""
    h, w = gt.shape
    out = np.full_like(gt, 255)
    for y in range(0, h, cell):
        for x in range(0, w, cell):
            blk = gt[y:y + cell, x:x + cell]
            v = blk[blk != 255]
            if v.size:
                out[y:y + cell, x:x + cell] = np.bincount(v, minlength=k).argmax()
    return out


# ---------------------------------------------------------------------------
def evaluate(model, data, classes, variants, text_sets, feat_settings):
    """Confusion matrices for every variant.

    variants: name -> dict(setting=(scale, mode), templates=..., kind=...,
    ks=..., pd=...)."""
    k = len(classes)
    head = model.decode_head
    conf = {name: np.zeros((k, k), np.int64) for name in variants}
    for img, gt in data:
        cache = {}
        for s in feat_settings:
            cache[s] = image_feats(model, img, *s)
        for name, v in variants.items():
            pred = predict(head, text_sets[v['templates']], cache[v['setting']], gt.shape,
                           v.get('kind', 'value'), v.get('ks', 0.0), v.get('pd', 0.0))
            conf[name] += confusion(gt, pred, k)
    return conf


def quickstart_clip(work_dir):
    """The quickstart's tiny CLIP weights; never trains (a benchmark must
    not write the quickstart's work dir): without them, say how to get
    them."""
    stamp = osp.join(work_dir, 'tiny_clip', 'done.json')
    weights = osp.join(work_dir, 'tiny_clip.pt')
    if not (osp.isfile(stamp) and osp.isfile(weights)):
        raise SystemExit(f'no trained tiny CLIP at {weights}: run `make quickstart` '
                         '(or pass --clip WEIGHTS)')
    return weights


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'synthetic'))
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'quickstart'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--clip', default=None,
                        help='tiny CLIP weights (default: the quickstart\'s, via '
                        'synthetic_pipeline.step_clip)')
    parser.add_argument('--styles', nargs='+', default=['flat', 'textured', 'night', 'fog'])
    parser.add_argument('--select-images', type=int, default=15,
                        help='train images per style used to choose the setting')
    parser.add_argument('--max-val', type=int, default=None,
                        help='val images per style (default: all; for smoke tests)')
    parser.add_argument('--out', default=osp.join(ROOT, 'results', 'maskclip_synthetic'),
                        help='output path without extension (.md and .json are written)')
    args = parser.parse_args(argv)
    args.fresh, args.tiny = False, False
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    t0 = time.perf_counter()

    from clipdense.apis import synthetic_pipeline as sp
    from clipdense.datasets.synthetic import spec
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    sp.step_world(args)  # cached: returns at once for the quickstart's world
    weights = args.clip or quickstart_clip(args.work_dir)
    classes = list(spec.CLASSES)
    k = len(classes)
    model = build(weights)
    head = model.decode_head
    text_sets = OrderedDict()
    for name, (names, tmpl) in TEXT_VARIANTS.items():
        text_sets[name] = head.text_encoder(names or classes, templates=tmpl)
    text_cos = {n: (t @ t.t()).tolist() for n, t in text_sets.items()}

    # ---------------- selection on train: scale / mode / templates
    settings = [(1, 'whole'), (2, 'whole'), (4, 'whole'), (2, 'slide')]
    sel_variants = OrderedDict()
    for s in settings:
        for t in text_sets:
            sel_variants[f'maskclip|{s[0]}|{s[1]}|{t}'] = dict(setting=s, templates=t)
            sel_variants[f'naive|{s[0]}|{s[1]}|{t}'] = dict(setting=s, templates=t,
                                                            kind='dense')
    train = []
    for style in args.styles:
        train += load_pairs(list_split(args.data_root, style, 'train', args.select_images))
    log(f'selection: {len(sel_variants)} variants on {len(train)} train images')
    sel_conf = evaluate(model, train, classes, sel_variants, text_sets, settings)
    sel = {n: iou_from_confusion(c)[1] for n, c in sel_conf.items()}
    best = max((n for n in sel if n.startswith('maskclip|')), key=sel.get)
    best_naive = max((n for n in sel if n.startswith('naive|')), key=sel.get)
    b_scale, b_mode, b_tmpl = best.split('|')[1:]
    best_setting = (int(b_scale), b_mode)
    log(f'chosen on train: {best} ({sel[best]:.2f}); naive best {best_naive}')

    # ---------------- val: all styles
    val = {style: load_pairs(list_split(args.data_root, style, 'val', args.max_val))
           for style in args.styles}
    base = (1, 'whole')
    rows = OrderedDict([
        ('naive dense baseline (attention pool at every position)',
         dict(setting=base, templates='maskclip', kind='dense')),
        ('MaskCLIP (value path)', dict(setting=base, templates='maskclip')),
        ('MaskCLIP + key smoothing', dict(setting=base, templates='maskclip', ks=1.0)),
        ('MaskCLIP + prompt denoising', dict(setting=base, templates='maskclip', pd=0.5)),
        ('MaskCLIP + KS + PD', dict(setting=base, templates='maskclip', ks=1.0, pd=0.5)),
        (f'naive dense baseline, chosen setting (x{b_scale} {b_mode}, {b_tmpl})',
         dict(setting=best_setting, templates=b_tmpl, kind='dense')),
        (f'MaskCLIP, chosen setting (x{b_scale} {b_mode}, {b_tmpl})',
         dict(setting=best_setting, templates=b_tmpl)),
        ('MaskCLIP, chosen setting + key smoothing',
         dict(setting=best_setting, templates=b_tmpl, ks=1.0)),
        ('MaskCLIP, chosen setting + prompt denoising',
         dict(setting=best_setting, templates=b_tmpl, pd=0.5)),
        ('MaskCLIP, chosen setting + KS + PD',
         dict(setting=best_setting, templates=b_tmpl, ks=1.0, pd=0.5)),
    ])
    feat_settings = sorted({v['setting'] for v in rows.values()})
    results = OrderedDict()
    gt_counts = {}
    for style, data in val.items():
        log(f'val {style}: {len(data)} images')
        conf = evaluate(model, data, classes, rows, text_sets, feat_settings)
        counts = np.zeros(k, np.int64)
        for _, gt in data:
            v = gt[gt != 255]
            counts += np.bincount(v, minlength=k)[:k]
        gt_counts[style] = counts.tolist()
        per = OrderedDict()
        ch_iou, ch = chance_miou(counts)
        per['chance (uniform random labels)'] = dict(mIoU=ch, iou=ch_iou.tolist())
        things = list(range(len(spec.THING_CLASSES)))
        for name, c in conf.items():
            iou, m = iou_from_confusion(c)
            acc, thing_acc = accuracies(c, things)
            per[name] = dict(mIoU=m, iou=iou.tolist(), aAcc=acc, thing_acc=thing_acc)
        for cell, tag in ((32, 'x1'), (16, 'x2'), (8, 'x4')):
            oc = np.zeros((k, k), np.int64)
            for _, gt in data:
                oc += confusion(gt, oracle(gt, cell, k), k)
            iou, m = iou_from_confusion(oc)
            per[f'oracle at the feature resolution {tag} ({128 // cell}x{128 // cell} '
                'cells per 128 px)'] = dict(mIoU=m, iou=iou.tolist())
        results[style] = per

    wall = time.perf_counter() - t0
    write(args, argv, results, sel, best, best_naive, classes, gt_counts, weights, wall,
          text_cos)
    return results


def fmt(v):
    return '' if v is None or v != v else f'{v:.2f}'


def write(args, argv, results, sel, best, best_naive, classes, gt_counts, weights, wall,
          text_cos):
    from clipdense.engine.checkpoint import atomic_write_bytes
    cmd = 'python tools/analysis_tools/bench_maskclip.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    styles = list(results)
    names = list(results[styles[0]])
    lines = [
        '# MaskCLIP on the synthetic world (tiny CLIP, no pixel labels)', '',
        f'Command: `{cmd.strip()}`', '',
        f'Tiny CLIP: `{osp.relpath(weights, ROOT)}` (clipdense-synth-rn, 128 px, '
        'C5 map 4x4 at 128 px). 13 classes (10 things, 3 stuff), val split, '
        'mIoU % (mmseg IoUMetric convention). Definitions: '
        '`tools/analysis_tools/bench_maskclip.py` docstring. The first MaskCLIP rows are '
        'the paper\'s setting (85 MaskCLIP templates, plain class names, whole 128 px '
        'image); "+ key smoothing" uses ks_thresh=1.0 (keys k_proj(x) of the attention '
        'pool), "+ prompt denoising" pd_thresh=0.5; the "chosen setting" rows use the '
        'input scale and text chosen on the train split (table at the end), which is '
        'what `configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py` uses.', '',
        '| row | ' + ' | '.join(styles) + ' |',
        '| --- |' + ' --- |' * len(styles)]
    for n in names:
        lines.append(f'| {n} | ' + ' | '.join(fmt(results[s][n]['mIoU']) for s in styles)
                     + ' |')
    first = styles[0]
    lines += ['', f'Per-class IoU on `{first}`:', '',
              '| row | ' + ' | '.join(classes) + ' |',
              '| --- |' + ' --- |' * len(classes)]
    for n in names:
        lines.append(f'| {n} | ' + ' | '.join(fmt(v) for v in results[first][n]['iou'])
                     + ' |')
    lines += ['', f'Pixel accuracy on `{first}` (all labelled pixels / thing pixels), %:', '',
              '| row | aAcc | thing pixels |', '| --- | --- | --- |']
    for n in names:
        r = results[first][n]
        if 'aAcc' in r:
            lines.append(f'| {n} | {fmt(r["aAcc"])} | {fmt(r["thing_acc"])} |')
    cos = np.array(text_cos['maskclip'])
    stuff = [classes.index(c) for c in ('sky', 'grass', 'road')]
    lines += ['', 'Cosine between the text embeddings of the stuff classes (MaskCLIP '
              'templates: sky-grass, sky-road, grass-road): '
              + ', '.join(f'{cos[a, b]:.2f}' for a, b in ((stuff[0], stuff[1]),
                                                         (stuff[0], stuff[2]),
                                                         (stuff[1], stuff[2])))
              + '; nearest thing to each: '
              + ', '.join(f'{classes[s_]} -> {classes[int(np.argsort(-cos[s_][:10])[0])]} '
                          f'({np.sort(cos[s_][:10])[-1]:.2f})' for s_ in stuff)]
    lines += ['', f'Selection on the train split (first {args.select_images} images per '
              'style), mIoU % of MaskCLIP / naive per input scale, mode and '
              f'text variant; chosen: `{best}` (naive: `{best_naive}`):', '',
              '| scale | mode | text | MaskCLIP | naive |',
              '| --- | --- | --- | --- | --- |']
    for n, v in sel.items():
        if n.startswith('maskclip|'):
            _, s, mode, t = n.split('|')
            lines.append(f'| x{s} | {mode} | {t} | {fmt(v)} | '
                         f'{fmt(sel["naive|" + "|".join([s, mode, t])])} |')
    lines += ['', f'Wall time {wall:.0f} s.', '']
    md = '\n'.join(lines)
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    atomic_write_bytes(args.out + '.md', md.encode())
    atomic_write_bytes(args.out + '.json', json.dumps(dict(
        command=cmd.strip(), weights=osp.relpath(weights, ROOT), classes=classes,
        gt_pixel_counts=gt_counts, results=results, selection=sel, text_cosine=text_cos,
        text_variants={n: dict(names=v[0], templates=v[1]) for n, v in TEXT_VARIANTS.items()},
        chosen=best, chosen_naive=best_naive, wall_seconds=wall),
        indent=2).encode())
    print(md)
    log(f'wrote {args.out}.md / .json in {wall:.0f}s')


if __name__ == '__main__':
    main()
