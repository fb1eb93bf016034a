#!/usr/bin/env python
"""Generate the embedded synthetic world (deterministic; cached).

    python tools/dataset_converters/generate_synthetic_world.py \
        --out data/synthetic --seed 0

writes the segmentation folders of every style, COCO instances, captions,
classification, MVTec AD, referring-segmentation and AGD20K-style trees and
the open-vocabulary split (layout: ``clipdense/datasets/synthetic/world.py``).
Running it again with the same arguments returns at once; an interrupted
run leaves nothing that looks complete. The same seed gives identical
files.
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from clipdense.datasets.synthetic import spec  # noqa: E402
from clipdense.datasets.synthetic.world import (ALL_PARTS,  # noqa: E402
                                                generate_world)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--out', default='data/synthetic', help='output folder')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--size', type=int, default=128,
                   help='side of segmentation/refer/AGD/anomaly images')
    p.add_argument('--num-train', type=int, default=200,
                   help='segmentation train images per style')
    p.add_argument('--num-val', type=int, default=50,
                   help='segmentation val images per style')
    p.add_argument('--styles', nargs='+', default=list(spec.STYLES),
                   choices=spec.STYLES)
    p.add_argument('--parts', nargs='+', default=list(ALL_PARTS),
                   choices=ALL_PARTS)
    p.add_argument('--clip-size', type=int, default=None,
                   help='side of caption and classification images '
                   '(default: --size)')
    p.add_argument('--num-clip-train', type=int, default=4000)
    p.add_argument('--num-clip-val', type=int, default=200)
    p.add_argument('--num-cls-per-class', type=int, default=20)
    p.add_argument('--num-anomaly-train', type=int, default=30)
    p.add_argument('--num-anomaly-good', type=int, default=10)
    p.add_argument('--num-anomaly-defect', type=int, default=8)
    p.add_argument('--num-refer-train', type=int, default=400)
    p.add_argument('--num-refer-val', type=int, default=100)
    p.add_argument('--num-agd-per-pair', type=int, default=6)
    p.add_argument('--workers', type=int, default=1,
                   help='worker processes (outputs do not depend on it)')
    p.add_argument('--force', action='store_true',
                   help='regenerate even if an identical world exists')
    p.add_argument('--quiet', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    t0 = time.perf_counter()
    paths = generate_world(
        a.out, seed=a.seed, size=a.size, num_train=a.num_train,
        num_val=a.num_val, styles=a.styles, parts=a.parts,
        clip_size=a.clip_size, num_clip_train=a.num_clip_train,
        num_clip_val=a.num_clip_val, num_cls_per_class=a.num_cls_per_class,
        num_anomaly_train=a.num_anomaly_train,
        num_anomaly_good=a.num_anomaly_good,
        num_anomaly_defect=a.num_anomaly_defect,
        num_refer_train=a.num_refer_train, num_refer_val=a.num_refer_val,
        num_agd_per_pair=a.num_agd_per_pair, workers=a.workers,
        progress=not a.quiet, force=a.force)
    if not a.quiet:
        print(json.dumps(paths, indent=2, sort_keys=True))
        print(f'done in {time.perf_counter() - t0:.1f}s', file=sys.stderr)
    return paths


if __name__ == '__main__':
    main()
