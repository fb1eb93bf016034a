"""The proxy CLIP beside the quickstart's tiny CLIP (issue #25): writes
``results/proxy_clip.{md,json}``.

    python tools/analysis_tools/proxy_clip_report.py

Per model, on the synthetic world (``data/synthetic``):

* **zero-shot top-1**: held-out single-object images (source style) over the
  10 thing classes, ``'a photo of a {}.'`` (the quickstart's check,
  :func:`clipdense.evaluation.zero_shot.zero_shot_classification`);
* **dense linear probe**: a linear classifier (1x1, on standardised
  features) on the frozen last feature map of the image tower (the tiny
  CLIP's C5, 4x4 at 128 px; the proxy's last-block tokens, 16x16), its
  logits upsampled bilinearly to the pixels and trained with pixel
  cross-entropy on the train split of every style (Adam, fixed steps, seed
  0); pixel mIoU on the val split;
* **MaskCLIP** (Zhou et al., ECCV 2022), training-free, at the model's own
  resolution (the whole 128 px image): the value path's per-position
  joint-space embeddings (``'value'`` of ``OpenCLIPResNet`` /
  ``OpenCLIPViT``) against the 13 class texts, cosine argmax, bilinear
  upsampling; with MaskCLIP's 85 templates and the plain names, and with
  the captions' phrasing ('a ball', 'under the sky', 'on the grass', 'on a
  road' in the captions' sentence frames; the setting the tiny CLIP's
  MaskCLIP config uses); log-probabilities (temperature 100) are upsampled,
  as ``MaskCLIPHead`` does. The naive dense baseline (``'dense'``: the pooled
  path at every position) and the oracle at the feature resolution (the
  majority label per feature cell) are given for reference;
* **anomaly zero-shot** (image level): AUROC of "anomalous" against
  "normal" state prompts (``clipdense/models/utils/anomaly_prompts.py``
  states in ``'a photo of a {}.'``) on the world's MVTec-style test images,
  mean over the 4 categories.

mIoU follows mmseg's IoUMetric (nan-mean over classes present in the ground
truth or predicted). The proxy's training (epochs, wall time, per-epoch
mean loss) is read from its stamp (``work_dirs/proxy/proxy_clip/done.json``).
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
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))

CAPTION_NAMES = ['a ' + c for c in ('ball', 'cup', 'bottle', 'knife', 'hammer',
                                    'key', 'mug', 'spoon', 'racket', 'scissors')
                 ] + ['under the sky', 'on the grass', 'on a road']
CAPTION_FRAMES = ['a photo of {}.', 'a picture of {}.', 'there is {}.', '{}.']


def log(msg):
    print(f'[proxy_clip_report] {msg}', file=sys.stderr, flush=True)


def models_to_report(args):
    return [
        dict(name='tiny CLIP (quickstart)', arch='clipdense-synth-rn',
             weights=args.tiny, backbone=dict(type='OpenCLIPResNet',
                                              out_indices=(3, ))),
        dict(name='proxy CLIP', arch='clipdense-synth-vit8',
             weights=args.proxy, backbone=dict(type='OpenCLIPViT',
                                               out_indices=(-1, ),
                                               pyramid=False)),
    ]


# ---------------------------------------------------------------------------
def build_backbone(m):
    from clipdense.registry import MODELS
    cfg = dict(m['backbone'], arch=m['arch'], pretrained=m['weights'],
               joint_outputs=('value', 'dense'), freeze='all')
    bb = MODELS.build(cfg)
    bb.init_weights()
    return bb.eval()


@torch.no_grad()
def extract(bb, paths, batch=50):
    """(last feature map, value, dense) for the images at ``paths``."""
    from clipdense.evaluation.zero_shot import preprocess
    feats, values, denses = [], [], []
    for i in range(0, len(paths), batch):
        x = preprocess(paths[i:i + batch], 128)
        *maps, joint = bb(x)
        feats.append(maps[-1].float())
        values.append(joint['value'].float())
        denses.append(joint['dense'].float())
    return torch.cat(feats), torch.cat(values), torch.cat(denses)


@torch.no_grad()
def text_embeddings(arch, weights, names, templates):
    import open_clip

    from clipdense.evaluation.zero_shot import load_open_clip
    model = load_open_clip(arch, weights)
    tok = open_clip.get_tokenizer(arch)
    emb = model.encode_text(tok([t.format(n) for n in names
                                 for t in templates]), normalize=True)
    emb = emb.view(len(names), len(templates), -1).mean(1)
    return F.normalize(emb, dim=-1), model, tok


def confusion(gt, pred, k, ignore=255):
    valid = gt != ignore
    return np.bincount(gt[valid] * k + pred[valid],
                       minlength=k * k).reshape(k, k)


def miou(conf):
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - np.diag(conf)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = inter / union
    return float(np.nanmean(iou) * 100)


def predict_maps(logits, size=128):
    return F.interpolate(logits, size=(size, size), mode='bilinear',
                         align_corners=False).argmax(1).numpy()


def zero_shot_segmentation(emb, text, gts, k, logit_scale=100.0):
    """Cosines times ``logit_scale``, log-softmax over the classes, then
    bilinear upsampling and argmax (as ``MaskCLIPHead``)."""
    cos = torch.einsum('bdhw,kd->bkhw', F.normalize(emb, dim=1), text)
    pred = predict_maps((cos * logit_scale).log_softmax(1))
    return sum(confusion(g, p, k) for g, p in zip(gts, pred))


def train_probe(feat, gts, k, steps, seed=0, batch=64, lr=1e-2):
    """Linear 1x1 classifier on standardised frozen features, logits
    upsampled bilinearly to the labels (pixel cross-entropy)."""
    g = torch.Generator().manual_seed(seed)
    mean = feat.mean((0, 2, 3), keepdim=True)
    std = feat.std((0, 2, 3), keepdim=True) + 1e-6
    torch.manual_seed(seed)
    lin = torch.nn.Conv2d(feat.shape[1], k, 1)
    opt = torch.optim.Adam(lin.parameters(), lr=lr, weight_decay=1e-4)
    y = torch.from_numpy(np.stack(gts)).long()
    x = (feat - mean) / std
    for step in range(steps):
        idx = torch.randint(len(x), (min(batch, len(x)), ), generator=g)
        logits = F.interpolate(lin(x[idx]), size=y.shape[-2:],
                               mode='bilinear', align_corners=False)
        loss = F.cross_entropy(logits, y[idx], ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lambda f: lin((f - mean) / std).detach(), float(loss)


def oracle(gt, cell, k):
    h, w = gt.shape
    out = np.full_like(gt, 255)
    for y in range(0, h, cell):
        for x in range(0, w, cell):
            blk = gt[y:y + cell, x:x + cell]
            v = blk[blk != 255]
            if v.size:
                out[y:y + cell, x:x + cell] = np.bincount(
                    v, minlength=k).argmax()
    return out


def auroc(scores, labels):
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(labels, scores) * 100)


@torch.no_grad()
def anomaly_auroc(model, tok, mvtec_root):
    """Image AUROC per category of 'anomalous' vs 'normal' state prompts."""
    from clipdense.datasets.synthetic import spec
    from clipdense.evaluation.zero_shot import preprocess
    from clipdense.models.utils.anomaly_prompts import (ANOMALOUS_STATES,
                                                        NORMAL_STATES)
    out = OrderedDict()
    for cat in spec.ANOMALY_CATEGORIES:
        sides = []
        for states in (NORMAL_STATES, ANOMALOUS_STATES):
            e = model.encode_text(tok([f'a photo of a {s.format(cat)}.'
                                       for s in states]), normalize=True)
            sides.append(F.normalize(e.mean(0), dim=-1))
        text = torch.stack(sides)
        test = osp.join(mvtec_root, cat, 'test')
        paths, labels = [], []
        for kind in sorted(os.listdir(test)):
            for n in sorted(os.listdir(osp.join(test, kind))):
                paths.append(osp.join(test, kind, n))
                labels.append(int(kind != 'good'))
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        img = model.encode_image(preprocess(paths, size), normalize=True)
        prob = (100 * img @ text.t()).softmax(-1)[:, 1]
        out[cat] = auroc(prob.numpy(), np.array(labels))
    return out


def list_split(data_root, style, split, limit=None):
    img_dir = osp.join(data_root, style, 'img_dir', split)
    names = sorted(n for n in os.listdir(img_dir) if n.endswith('.png'))[:limit]
    return ([osp.join(img_dir, n) for n in names],
            [osp.join(data_root, style, 'ann_dir', split, n) for n in names])


def read_gts(paths):
    import cv2
    return [cv2.imread(p, cv2.IMREAD_UNCHANGED).astype(np.int64)
            for p in paths]


def report_model(m, args, data, classes):
    from clipdense.evaluation.zero_shot import zero_shot_classification
    from clipdense.models.utils.templates import get_templates
    k = len(classes)
    res = OrderedDict(arch=m['arch'], weights=osp.relpath(m['weights'], ROOT))
    log(f'{m["name"]}: zero-shot classification')
    res['zero_shot_top1'] = 100 * zero_shot_classification(
        m['arch'], m['weights'], osp.join(args.data_root, 'classification',
                                          'test.jsonl'), args.data_root)
    bb = build_backbone(m)
    text_plain, _, _ = text_embeddings(m['arch'], m['weights'], classes,
                                       get_templates('maskclip'))
    text_caps, model, tok = text_embeddings(m['arch'], m['weights'],
                                            CAPTION_NAMES, CAPTION_FRAMES)
    feats = {}
    for style in args.styles:
        for split in ('train', 'val'):
            log(f'{m["name"]}: features {style}/{split}')
            feats[style, split] = extract(bb, data[style, split][0])
    grid = tuple(feats[args.styles[0], 'val'][1].shape[-2:])
    res['grid'] = list(grid)
    # linear probe on the frozen last map, trained on every style's train
    x = torch.cat([feats[s, 'train'][0] for s in args.styles])
    y = sum([data[s, 'train'][1] for s in args.styles], [])
    log(f'{m["name"]}: linear probe ({x.shape[1]} channels, '
        f'{len(y)} images, {args.probe_steps} steps)')
    probe, last_loss = train_probe(x, y, k, args.probe_steps)
    res['probe_final_train_loss'] = last_loss
    per = OrderedDict()
    cell = 128 // grid[0]
    for style in args.styles:
        f, v, d = feats[style, 'val']
        gts = data[style, 'val'][1]
        r = OrderedDict()
        r['probe'] = miou(sum(confusion(g, p, k) for g, p in zip(
            gts, predict_maps(probe(f)))))
        r['maskclip_plain'] = miou(zero_shot_segmentation(v, text_plain, gts,
                                                          k))
        r['maskclip_captions'] = miou(zero_shot_segmentation(v, text_caps,
                                                             gts, k))
        r['naive_captions'] = miou(zero_shot_segmentation(d, text_caps, gts,
                                                          k))
        r['oracle'] = miou(sum(confusion(g, oracle(g, cell, k), k)
                               for g in gts))
        per[style] = r
    res['per_style'] = per
    log(f'{m["name"]}: anomaly zero-shot')
    res['anomaly_auroc'] = anomaly_auroc(model, tok,
                                         osp.join(args.data_root, 'mvtec'))
    return res


def fmt(v):
    return f'{v:.1f}'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data',
                                                        'synthetic'))
    parser.add_argument('--tiny', default=osp.join(ROOT, 'work_dirs',
                                                   'quickstart',
                                                   'tiny_clip.pt'))
    parser.add_argument('--proxy', default=osp.join(ROOT, 'work_dirs', 'proxy',
                                                    'proxy_clip.pt'))
    parser.add_argument('--styles', nargs='+',
                        default=['flat', 'textured', 'night', 'fog'])
    parser.add_argument('--max-images', type=int, default=None,
                        help='images per style and split (default: all)')
    parser.add_argument('--probe-steps', type=int, default=300)
    parser.add_argument('--out', default=osp.join(ROOT, 'results',
                                                  'proxy_clip'))
    args = parser.parse_args(argv)
    for w in (args.tiny, args.proxy):
        if not osp.isfile(w):
            raise SystemExit(f'no weights at {w}: run `make quickstart` (tiny '
                             'CLIP) and `make proxy-clip` (proxy CLIP)')
    t0 = time.perf_counter()
    torch.manual_seed(0)
    from clipdense.datasets.synthetic import spec
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    classes = list(spec.CLASSES)
    data = {}
    for style in args.styles:
        for split in ('train', 'val'):
            imgs, anns = list_split(args.data_root, style, split,
                                    args.max_images)
            data[style, split] = (imgs, read_gts(anns))
    results = OrderedDict()
    for m in models_to_report(args):
        results[m['name']] = report_model(m, args, data, classes)
    stamp = osp.join(osp.dirname(args.proxy), 'proxy_clip', 'done.json')
    training = json.load(open(stamp)) if osp.isfile(stamp) else None
    write(args, argv, results, training, time.perf_counter() - t0)
    return results


def write(args, argv, results, training, wall):
    from clipdense.engine.checkpoint import atomic_write_bytes
    cmd = 'python tools/analysis_tools/proxy_clip_report.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    styles = args.styles
    targets = [s for s in styles if s != 'flat']

    def both(r, key):
        flat = r['per_style']['flat'][key] if 'flat' in r['per_style'] else None
        mean = np.mean([r['per_style'][s][key] for s in styles])
        return (fmt(flat) + ' / ' if flat is not None else '') + fmt(mean)

    lines = [
        '# Proxy CLIP beside the tiny CLIP (synthetic world)', '',
        f'Command: `{cmd.strip()}`', '',
        'mIoU % on the val split (13 classes); "a / b" = flat (source style) / '
        f'mean over {", ".join(styles)}. Definitions: the docstring of '
        '`tools/analysis_tools/proxy_clip_report.py`.', '',
        '| model | arch | token grid at 128 px | zero-shot top-1 (%) | '
        'dense linear probe | MaskCLIP (85 templates, plain names) | '
        'MaskCLIP (caption phrasing) | naive dense (caption phrasing) | '
        'oracle at the grid | anomaly image AUROC (mean of 4) |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for name, r in results.items():
        g = r['grid']
        lines.append(
            f'| {name} | {r["arch"]} | {g[0]}x{g[1]} | '
            f'{fmt(r["zero_shot_top1"])} | {both(r, "probe")} | '
            f'{both(r, "maskclip_plain")} | {both(r, "maskclip_captions")} | '
            f'{both(r, "naive_captions")} | {both(r, "oracle")} | '
            f'{fmt(np.mean(list(r["anomaly_auroc"].values())))} |')
    lines += ['', 'Per style (mIoU %):', '',
              '| model | row | ' + ' | '.join(styles) + ' |',
              '| --- | --- | ' + ' | '.join('---' for _ in styles) + ' |']
    for name, r in results.items():
        for key in ('probe', 'maskclip_plain', 'maskclip_captions',
                    'naive_captions', 'oracle'):
            lines.append(f'| {name} | {key} | ' + ' | '.join(
                fmt(r['per_style'][s][key]) for s in styles) + ' |')
    lines += ['', 'Anomaly image AUROC per category (%):', '',
              '| model | ' + ' | '.join(next(iter(results.values()))[
                  'anomaly_auroc']) + ' |',
              '| --- |' + ' --- |' * 4]
    for name, r in results.items():
        lines.append(f'| {name} | ' + ' | '.join(
            fmt(v) for v in r['anomaly_auroc'].values()) + ' |')
    if training:
        el = training.get('epoch_loss', [])
        wall_s = training.get('train_wall_seconds')
        how = (f'{wall_s / 60:.1f} min wall (2 CPU cores shared with other '
               'jobs)' if wall_s is not None else
               f'trained by tools/train.py in `{training.get("adopted_run")}` '
               'and adopted with `tools/proxy_clip.py --from-run`')
        lines += ['', f'Proxy CLIP training: {training.get("epochs")} epochs '
                  f'at batch {training.get("batch_size")}, {how}. Mean '
                  'contrastive loss per epoch: ' + ', '.join(f'{e}: {v:.3f}' for e, v, _ in el)
                  + '.']
        if len(el) >= 2:
            drop = (el[-2][1] - el[-1][1]) / el[-2][1] * 100
            lines[-1] += (
                f' The last epoch lowered it by {drop:.0f}%: ' +
                ('still falling, not plateaued (a longer schedule: '
                 '`make proxy-clip PROXY_ARGS="--epochs N"`).' if drop > 5
                 else 'plateaued.'))
    lines += ['', f'Wall time of this report {wall:.0f} s.', '']
    md = '\n'.join(lines)
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    atomic_write_bytes(args.out + '.md', md.encode())
    atomic_write_bytes(args.out + '.json', json.dumps(
        dict(command=cmd.strip(), results=results, training=training,
             wall_seconds=wall), indent=2).encode())
    print(md, flush=True)


if __name__ == '__main__':
    main()
