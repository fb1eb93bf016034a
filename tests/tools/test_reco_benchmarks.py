"""Label conversion of ReCo's benchmarks (tools/dataset_converters/reco_benchmarks.py)."""
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from clipdense.testing.runs import ROOT

spec = importlib.util.spec_from_file_location(
    'reco_benchmarks', osp.join(ROOT, 'tools/dataset_converters/reco_benchmarks.py'))
rb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rb)


def test_cityscapes27(tmp_path):
    d = tmp_path / 'gtFine' / 'val' / 'city'
    d.mkdir(parents=True)
    lab = np.arange(34, dtype=np.uint8).reshape(2, 17)
    cv2.imwrite(str(d / 'a_gtFine_labelIds.png'), lab)
    assert rb.cityscapes27(str(tmp_path), ('val', )) == 1
    out = cv2.imread(str(d / 'a_gtFine_labelIds27.png'), cv2.IMREAD_UNCHANGED)
    expect = np.where(lab >= 7, lab.astype(int) - 7, 255)
    np.testing.assert_array_equal(out, expect)
    assert out.max() == 255 and sorted(set(out.ravel()) - {255}) == list(range(27))


def test_kitti_step(tmp_path):
    d = tmp_path / 'panoptic_maps' / 'val' / '0002'
    d.mkdir(parents=True)
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = [[0, 5, 18], [19, 255, 3]]  # semantic id in the red channel
    rgb[..., 1] = 7  # instance ids must not leak into the label
    cv2.imwrite(str(d / '000000.png'), rgb[:, :, ::-1])
    assert rb.kitti_step(str(tmp_path), ('val', )) == 1
    out = cv2.imread(str(d / '000000_semantic.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(out, [[0, 5, 18], [255, 255, 3]])


def test_coco_fine_to_coarse(tmp_path):
    things = dict(categories=[dict(id=1, name='person', supercategory='person'),
                              dict(id=2, name='bicycle', supercategory='vehicle'),
                              dict(id=52, name='banana', supercategory='food'),
                              dict(id=62, name='chair', supercategory='furniture')])
    stuff = dict(categories=[dict(id=122, name='food-other', supercategory='food'),
                             dict(id=124, name='furniture-other', supercategory='furniture'),
                             dict(id=157, name='sky-other', supercategory='sky'),
                             dict(id=101, name='cardboard', supercategory='rawmaterial'),
                             dict(id=183, name='other', supercategory='other')])
    (tmp_path / 't.json').write_text(json.dumps(things))
    (tmp_path / 's.json').write_text(json.dumps(stuff))
    f2c = rb.coco_fine_to_coarse([str(tmp_path / 't.json'), str(tmp_path / 's.json')])
    names = {fine: rb.COCO27[c] for fine, c in f2c.items()}
    assert names == {0: 'person', 1: 'vehicle', 51: 'food things', 61: 'furniture things',
                     121: 'food stuff', 123: 'furniture stuff', 156: 'sky',
                     100: 'raw material'}
    stuff['categories'].append(dict(id=150, name='x', supercategory='nonsense'))
    (tmp_path / 's.json').write_text(json.dumps(stuff))
    with pytest.raises(ValueError, match='unknown supercategory'):
        rb.coco_fine_to_coarse([str(tmp_path / 's.json')])


def test_cocostuff27_from_stuffthingmaps_and_mmseg_train_ids(tmp_path):
    """Both label files map to the same 27 coarse ids: the stuffthingmaps
    (COCO id - 1, the authors' input) and mmseg's 171 train ids."""
    from clipdense.datasets.coco_stuff27 import (COCO_STUFF_27, COCO_STUFF_171,
                                                 fine171_to_coarse27, stuffthing182_ids)
    d = tmp_path / 'annotations' / 'val2017'
    d.mkdir(parents=True)
    ids182 = np.array(stuffthing182_ids() + [255], np.uint8)
    ids171 = np.array(list(range(171)) + [255], np.uint8)
    cv2.imwrite(str(d / '000000000139.png'), ids182.reshape(4, 43))
    cv2.imwrite(str(d / '000000000285_labelTrainIds.png'), ids171.reshape(4, 43))
    assert rb.cocostuff27(str(tmp_path), splits=('val', )) == 2
    a = cv2.imread(str(d / '000000000139_labelTrainIds27.png'), cv2.IMREAD_UNCHANGED).ravel()
    b = cv2.imread(str(d / '000000000285_labelTrainIds27.png'), cv2.IMREAD_UNCHANGED).ravel()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:171], fine171_to_coarse27())
    assert a[-1] == 255
    coarse = {n: COCO_STUFF_27[c] for n, c in zip(COCO_STUFF_171, a[:171])}
    assert coarse['person'] == 'person' and coarse['wall brick'] == 'wall'
    assert coarse['tv'] == 'electronic' and coarse['playingfield'] == 'ground'
    # ids that never occur (e.g. 11 = COCO's removed 'street sign') stay unlabelled
    cv2.imwrite(str(d / '000000000001.png'), np.array([[11, 25, 0]], np.uint8))
    rb.cocostuff27(str(tmp_path), splits=('val', ))
    np.testing.assert_array_equal(
        cv2.imread(str(d / '000000000001_labelTrainIds27.png'), cv2.IMREAD_UNCHANGED),
        [[255, 255, 9]])
