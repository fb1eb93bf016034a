"""Where a synthetic CLIP's dense read-outs go wrong, per class (issue #25,
item 3): writes ``results/proxy_dense_per_class.md`` / ``.json``.

    python tools/analysis_tools/proxy_dense_per_class.py \\
        --candidate "A=work_dirs/proxy_candidates/A_nouns_12e.pt" \\
        --candidate "F=work_dirs/proxy/proxy_clip.pt" \\
        --labels "ReCo pseudo-labels=work_dirs/reco_proxy/pseudo_labels"

For each candidate (``NAME=WEIGHTS[@ARCH]``, as ``proxy_clip_selection.py``
takes them), the training-free zero-shot segmentation of the selection's
dense score (``proxy_clip_selection.dense_confusions``: MaskCLIP's 85
templates, plain class names, the CLIP's own token grid) on the flat
world's **train** split, for the naive dense tokens
and MaskCLIP's value path: each class's IoU and the share of pixels
predicted as it, beside each class's share of the ground truth. Each
``--labels NAME=DIR`` adds the class shares of the label PNGs under ``DIR``
(e.g. the pseudo-labels a ReCo+ student trains on). Nothing here chooses
anything; it explains the numbers of the selection and the benches.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def per_class(conf):
    """``(iou %, predicted share %, ground-truth share %)`` per class of a
    confusion matrix (rows: ground truth, columns: prediction); the IoU of a
    class absent from both is None."""
    conf = np.asarray(conf, dtype=np.float64)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    total = max(conf.sum(), 1.0)
    iou = [None if u == 0 else float(100 * i / u)
           for i, u in zip(inter, union)]
    return (iou, (100 * conf.sum(0) / total).tolist(),
            (100 * conf.sum(1) / total).tolist())


def label_shares(folder, k, limit=None):
    """Share (%) of each of ``k`` classes among the pixels of the PNG label
    maps under ``folder`` (values >= k, e.g. 255, are left out)."""
    from PIL import Image
    files = sorted(glob.glob(osp.join(folder, '**', '*.png'),
                             recursive=True))[:limit]
    if not files:
        raise SystemExit(f'--labels {folder}: no PNG label maps there')
    counts = np.zeros(k, np.int64)
    for f in files:
        a = np.asarray(Image.open(f)).ravel()
        counts += np.bincount(a[a < k], minlength=k)[:k]
    return (100 * counts / max(counts.sum(), 1)).tolist(), len(files)


def _cell(x):
    return '-' if x is None else f'{x:.0f}'


def main(argv=None):
    from proxy_clip_selection import ARCH, dense_confusions, parse_candidate
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--candidate', type=parse_candidate, action='append',
                   default=[], help='"NAME=WEIGHTS" or "NAME=WEIGHTS@ARCH"')
    p.add_argument('--labels', type=parse_candidate, action='append',
                   default=[], help='"NAME=DIR" of PNG label maps')
    p.add_argument('--data-root', default=osp.join(ROOT, 'data', 'synthetic'))
    p.add_argument('--limit', type=int, default=200,
                   help='first N flat train images (and label maps)')
    p.add_argument('--out', default=osp.join(ROOT, 'results',
                                             'proxy_dense_per_class'))
    args = p.parse_args(argv)
    if not args.candidate and not args.labels:
        p.error('give at least one --candidate or --labels')
    from clipdense.datasets.synthetic import spec
    from clipdense.models.utils.clip_archs import register_clip_archs
    register_clip_archs()
    classes = list(spec.CLASSES)
    t0 = time.time()
    rows, gt_share = [], None
    for c in args.candidate:
        name, w = c[0], c[1]
        arch = c[2] if len(c) > 2 else ARCH
        if not osp.isfile(w):
            raise SystemExit(f'candidate {name!r}: no weights at {w}')
        for path, conf in zip(('naive dense', 'MaskCLIP value'),
                              dense_confusions(arch, w, args.data_root,
                                               args.limit)):
            iou, pred, gt_share = per_class(conf)
            miou = np.mean([x for x in iou if x is not None])
            rows.append(dict(name=name, weights=osp.relpath(w, ROOT),
                             arch=arch, path=path, miou=float(miou),
                             iou=iou, predicted_share=pred))
    labels = []
    for name, folder in ((c[0], c[1]) for c in args.labels):
        share, n = label_shares(folder, len(classes), args.limit)
        labels.append(dict(name=name, folder=osp.relpath(folder, ROOT),
                           files=n, share=share))
    argv_ = sys.argv[1:] if argv is None else argv
    cmd = 'python tools/analysis_tools/proxy_dense_per_class.py ' + ' '.join(
        f'"{a}"' if ' ' in a else a for a in argv_)
    head = '| candidate | read-out | mIoU | ' + ' | '.join(classes) + ' |'
    sep = '| --- | --- | --- | ' + ' | '.join('---' for _ in classes) + ' |'
    lines = ['# Dense read-outs per class on the flat train split', '',
             f'Command: `{cmd}`', '',
             __doc__.split('\n\n')[2].replace('\n', ' '), '']
    if rows:
        lines += [f'IoU (%) per class, first {args.limit} flat train '
                  'images:', '', head, sep]
        lines += [f'| {r["name"]} | {r["path"]} | {r["miou"]:.1f} | '
                  + ' | '.join(_cell(x) for x in r['iou']) + ' |'
                  for r in rows]
        lines += ['', 'Share of the pixels (%) predicted as each class, and '
                  'the ground truth\'s:', '', head, sep]
        lines += [f'| {r["name"]} | {r["path"]} | - | '
                  + ' | '.join(_cell(x) for x in r['predicted_share']) + ' |'
                  for r in rows]
        lines.append('| ground truth | - | - | '
                     + ' | '.join(_cell(x) for x in gt_share) + ' |')
    if labels:
        lines += ['', 'Class shares (%) of label maps:', '',
                  '| label maps | files | ' + ' | '.join(classes) + ' |',
                  '| --- | --- | ' + ' | '.join('---' for _ in classes)
                  + ' |']
        lines += [f'| {lab["name"]} (`{lab["folder"]}`) | {lab["files"]} | '
                  + ' | '.join(_cell(x) for x in lab['share']) + ' |'
                  for lab in labels]
    lines += ['', f'Wall time {time.time() - t0:.0f} s.', '']
    md = '\n'.join(lines)
    from clipdense.fileio import atomic_write_bytes
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    atomic_write_bytes(args.out + '.md', md.encode())
    atomic_write_bytes(args.out + '.json', json.dumps(dict(
        command=cmd, classes=classes, limit=args.limit, readouts=rows,
        ground_truth_share=gt_share, labels=labels), indent=2).encode())
    print(md)
    return rows, labels


if __name__ == '__main__':
    main()
