"""Label maps of ReCo's benchmarks (STEGO / ReCo protocols) in the mmseg
layout read by configs/reco/_base_/{cityscapes27,kitti_step,cocostuff27}.py.

    python tools/dataset_converters/reco_benchmarks.py cityscapes27 data/cityscapes
    python tools/dataset_converters/reco_benchmarks.py kitti_step data/kitti_step
    python tools/dataset_converters/reco_benchmarks.py cocostuff27 data/coco_stuff164k \
        --curated PATH/TO/Coco164kFull_Stuff_Coarse.txt

* cityscapes27: ``gtFine/<split>/<city>/*_gtFine_labelIds.png`` ->
  ``*_gtFine_labelIds27.png`` with ``labelId - 7`` for labelIds 7..33 and
  255 otherwise (the 27 classes of Cityscapes' labels.py with a category).
* kitti_step: ``panoptic_maps/<split>/<seq>/*.png`` (semantic id in the red
  channel, 255 void) -> ``*_semantic.png``; images are expected under
  ``images/<split>/<seq>/`` with the same names.
* cocostuff27: ``annotations/<split>2017/*_labelTrainIds.png`` (the
  stuffthingmaps ids 0..181 = COCO category id - 1, 255 unlabelled) ->
  ``*_labelTrainIds27.png`` with the 27 coarse classes. The fine-to-coarse
  map is derived from the ``supercategory`` fields of COCO's and
  COCO-Stuff's category lists (``--categories`` json files holding
  ``categories``), which is the hierarchy IIC and STEGO use. ``--curated``
  (STEGO's image list) is copied to ``curated_<split>.txt``.
"""
import argparse
import glob
import json
import os.path as osp
import shutil
import sys

import numpy as np

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


def cocostuff27(root, categories, curated=None, splits=('train', 'val')):
    import cv2
    f2c = coco_fine_to_coarse(categories)
    lut = np.full(256, 255, np.uint8)
    for fine, coarse in f2c.items():
        lut[fine] = coarse
    n = 0
    for split in splits:
        for p in sorted(glob.glob(osp.join(root, 'annotations', f'{split}2017',
                                           '*_labelTrainIds.png'))):
            _write(p.replace('_labelTrainIds.png', '_labelTrainIds27.png'),
                   lut[cv2.imread(p, cv2.IMREAD_UNCHANGED)])
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
        if not a.categories:
            sys.exit('cocostuff27 needs --categories instances_val2017.json stuff_val2017.json')
        n = cocostuff27(a.root, a.categories, a.curated, a.splits)
    print(f'wrote {n} label maps under {a.root}')
    if n == 0:
        sys.exit('no label maps found: check the folder layout in this script\'s docstring')


if __name__ == '__main__':
    main()
