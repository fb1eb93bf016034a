"""Label maps of ReCo's benchmarks (STEGO / ReCo protocols) in the mmseg
layout read by configs/reco/_base_/{cityscapes27,kitti_step,cocostuff27}.py.

    python tools/dataset_converters/reco_benchmarks.py cityscapes27 data/cityscapes
    python tools/dataset_converters/reco_benchmarks.py kitti_step data/kitti_step
    python tools/dataset_converters/reco_benchmarks.py cocostuff27 data/cocostuff

* cityscapes27: ``gtFine/<split>/<city>/*_gtFine_labelIds.png`` ->
  ``*_gtFine_labelIds27.png`` with ``labelId - 7`` for labelIds 7..33 and
  255 otherwise (the 27 classes of Cityscapes' labels.py with a category).
* kitti_step: ``panoptic_maps/<split>/<seq>/*.png`` (semantic id in the red
  channel, 255 void) -> ``*_semantic.png``; images are expected under
  ``images/<split>/<seq>/`` with the same names.
* cocostuff27: the stuffthingmaps ``annotations/<split>2017/<id>.png``
  (pixel = COCO category id - 1, 255 unlabelled; the files STEGO's and
  ReCo's COCO-Stuff folder holds) or mmseg's
  ``annotations/<split>2017/<id>_labelTrainIds.png`` (the 171 classes) ->
  ``<id>_labelTrainIds27.png`` with the 27 coarse classes of
  :mod:`clipdense.datasets.coco_stuff27`. ``--categories`` (COCO's and
  COCO-Stuff's category json files) derives the map from their
  ``supercategory`` fields instead; ``--curated`` copies an image list to
  ``curated_<split>.txt`` (the configs read STEGO's list at
  ``curated/<split>2017/Coco164kFull_Stuff_Coarse.txt`` directly).
"""
import argparse
import glob
import json
import os.path as osp
import shutil
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

COCO27 = ('electronic', 'appliance', 'food things', 'furniture things',
          'indoor', 'kitchen', 'accessory', 'animal', 'outdoor', 'person',
          'sports', 'vehicle', 'ceiling', 'floor', 'food stuff',
          'furniture stuff', 'raw material', 'textile', 'wall', 'window',
          'building', 'ground', 'plant', 'sky', 'solid', 'structural', 'water')


def _write(path, arr):
    import cv2
    if not cv2.imwrite(path, arr.astype(np.uint8)):
        raise RuntimeError(f'could not write {path}')


def cityscapes27(root, splits=('train', 'val')):
    import cv2
    n = 0
    for split in splits:
        for p in sorted(glob.glob(osp.join(root, 'gtFine', split, '*', '*_gtFine_labelIds.png'))):
            lab = cv2.imread(p, cv2.IMREAD_UNCHANGED).astype(np.int32) - 7
            lab[(lab < 0) | (lab > 26)] = 255
            _write(p.replace('_gtFine_labelIds.png', '_gtFine_labelIds27.png'), lab)
            n += 1
    return n


def kitti_step(root, splits=('train', 'val')):
    import cv2
    n = 0
    for split in splits:
        for p in sorted(glob.glob(osp.join(root, 'panoptic_maps', split, '*', '*.png'))):
            if p.endswith('_semantic.png'):
                continue
            rgb = cv2.imread(p, cv2.IMREAD_COLOR)[:, :, ::-1]
            sem = rgb[:, :, 0].astype(np.int32)
            sem[sem > 18] = 255
            _write(p[:-4] + '_semantic.png', sem)
            n += 1
    return n


def coco_fine_to_coarse(category_files):
    """``{fine id (category id - 1): coarse index}`` from category lists."""
    things = ('electronic', 'appliance', 'food', 'furniture', 'indoor', 'kitchen',
              'accessory', 'animal', 'outdoor', 'person', 'sports', 'vehicle')
    stuff = ('ceiling', 'floor', 'food', 'furniture', 'rawmaterial', 'textile', 'wall',
             'window', 'building', 'ground', 'plant', 'sky', 'solid', 'structural',
             'water')
    out = {}
    for f in category_files:
        for c in json.load(open(f))['categories']:
            sup = c['supercategory'].replace(' ', '').replace('-', '').lower()
            is_thing = c['id'] <= 91
            table = things if is_thing else stuff
            if sup not in table:
                if c['name'] == 'other':
                    continue  # COCO-Stuff's 'other' (id 183) is unlabelled
                raise ValueError(f'unknown supercategory {sup!r} of {c}')
            out[c['id'] - 1] = table.index(sup) + (0 if is_thing else len(things))
    return out


def cocostuff27(root, categories=None, curated=None, splits=('train', 'val')):
    import cv2

    from clipdense.datasets.coco_stuff27 import (fine171_to_coarse27,
                                                 fine182_to_coarse27)
    f2c = coco_fine_to_coarse(categories) if categories else fine182_to_coarse27()
    lut182 = np.full(256, 255, np.uint8)
    for fine, coarse in f2c.items():
        lut182[fine] = coarse
    lut171 = np.full(256, 255, np.uint8)
    lut171[:171] = fine171_to_coarse27()
    n = 0
    for split in splits:
        for p in sorted(glob.glob(osp.join(root, 'annotations', f'{split}2017', '*.png'))):
            name = osp.basename(p)
            if name.endswith('_labelTrainIds.png'):  # mmseg's 171 train ids
                lut, out = lut171, p.replace('_labelTrainIds.png', '_labelTrainIds27.png')
            elif name[:-4].isdigit():  # stuffthingmaps, COCO id - 1
                lut, out = lut182, p[:-4] + '_labelTrainIds27.png'
            else:
                continue
            _write(out, lut[cv2.imread(p, cv2.IMREAD_UNCHANGED)])
            n += 1
        if curated:
            shutil.copy(curated, osp.join(root, f'curated_{split}.txt'))
    return n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('dataset', choices=('cityscapes27', 'kitti_step', 'cocostuff27'))
    p.add_argument('root')
    p.add_argument('--splits', nargs='+', default=['train', 'val'])
    p.add_argument('--categories', nargs='+', default=[],
                   help='cocostuff27: json files with COCO (things) and COCO-Stuff '
                        '(stuff) "categories", e.g. instances_val2017.json stuff_val2017.json')
    p.add_argument('--curated', help="cocostuff27: STEGO's curated image list")
    a = p.parse_args(argv)
    if not osp.isdir(a.root):
        sys.exit(f'{a.root} is not a folder')
    if a.dataset == 'cityscapes27':
        n = cityscapes27(a.root, a.splits)
    elif a.dataset == 'kitti_step':
        n = kitti_step(a.root, a.splits)
    else:
        n = cocostuff27(a.root, a.categories or None, a.curated, a.splits)
    print(f'wrote {n} label maps under {a.root}')
    if n == 0:
        sys.exit('no label maps found: check the folder layout in this script\'s docstring')


if __name__ == '__main__':
    main()
