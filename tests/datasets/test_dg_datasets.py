"""Driving datasets for domain generalization: tiny fixtures in each real
layout (GTA5, SYNTHIA, ACDC, Cityscapes, BDD100K, Mapillary v1.2), read and
mapped to the 19 Cityscapes classes."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from PIL import Image

from clipdense.datasets import (ACDCDataset, GTA5Dataset,
                                MapillaryCityscapesDataset, SynthiaDataset)
from clipdense.datasets import cityscapes_labels as cl
from clipdense.registry import DATASETS

H, W = 4, 6
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
LOAD_RAW = [dict(type='LoadImageFromFile'), dict(type='LoadMappedAnnotations')]


def _img(path, seed=0):
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def _palette_png(path, ids):
    """A palette PNG (as GTA5 and Cityscapes-style id files are)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    im = Image.fromarray(np.asarray(ids, np.uint8))
    im.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    assert im.mode == 'P'
    im.save(path)


def _grey_png(path, ids):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(ids, np.uint8)).save(path)


def _grid(values):
    """Spread values over an H x W map (row-major, repeated)."""
    flat = np.resize(np.asarray(values), H * W)
    return flat.reshape(H, W)


def _expected(raw, table):
    out = np.full(raw.shape, 255, np.uint8)
    for k, v in table.items():
        out[raw == k] = v
    return out


def _gt(ds, i=0):
    return ds[i]['gt_seg_map']


# --------------------------------------------------------------------- GTA5
# Cityscapes ids: 0 unlabeled, 1 ego vehicle, 7 road, 8 sidewalk, 11
# building, 21 vegetation, 23 sky, 26 car, 31 train, 33 bicycle, 34 (not a
# Cityscapes id)
GTA_IDS = [0, 1, 7, 8, 11, 21, 23, 26, 31, 33, 34, 7]
GTA_TRAIN = {7: 0, 8: 1, 11: 2, 21: 8, 23: 10, 26: 13, 31: 16, 33: 18}


@pytest.fixture
def gta5_root(tmp_path):
    root = tmp_path / 'gta5'
    for i, name in enumerate(('00001', '00002')):
        _img(str(root / 'images' / f'{name}.png'), i)
        _palette_png(str(root / 'labels' / f'{name}.png'),
                     np.roll(_grid(GTA_IDS), i))
    return str(root)


def test_gta5_converted_and_raw(gta5_root):
    written = cl.convert_dataset('gta5', gta5_root)
    assert sorted(osp.basename(p) for p in written) == [
        '00001_labelTrainIds.png', '00002_labelTrainIds.png']
    ds = GTA5Dataset(data_root=gta5_root, pipeline=LOAD)
    assert len(ds) == 2
    assert ds.metainfo['classes'] == cl.CLASSES and len(cl.CLASSES) == 19
    raw = _grid(GTA_IDS)
    expected = _expected(raw, GTA_TRAIN)
    np.testing.assert_array_equal(_gt(ds), expected)
    assert expected[0, 0] == 255 and expected[1, 4] == 255  # ids 0 and 34
    raw_ds = GTA5Dataset(data_root=gta5_root, pipeline=LOAD_RAW,
                         label_format='raw')
    assert raw_ds.get_data_info(0)['seg_map_path'].endswith('labels/00001.png')
    for i in range(2):
        np.testing.assert_array_equal(_gt(raw_ds, i), _gt(ds, i))
    # a second conversion writes nothing new
    assert cl.convert_dataset('gta5', gta5_root) == []


def test_raw_labels_with_plain_loader_are_refused(gta5_root):
    with pytest.raises(ValueError, match='LoadMappedAnnotations'):
        GTA5Dataset(data_root=gta5_root, pipeline=LOAD, label_format='raw')
    with pytest.raises(ValueError, match="'train_ids' or 'raw'"):
        GTA5Dataset(data_root=gta5_root, pipeline=LOAD, label_format='ids')
    with pytest.raises(ValueError, match='reduce_zero_label'):
        GTA5Dataset(data_root=gta5_root, pipeline=LOAD, reduce_zero_label=True)


# ------------------------------------------------------------------ SYNTHIA
# class ids (R channel, 16-bit): 0 void, 1 sky, 2 building, 3 road, 11
# bicycle, 13 parking-slot, 16 terrain, 21 wall, 22 lanemarking, and 259
# (= 3 + 256: must not wrap around to 'road' in a uint8 cast)
SYN_IDS = [0, 1, 2, 3, 11, 13, 16, 21, 22, 259, 3, 10]


@pytest.fixture
def synthia_root(tmp_path):
    root = tmp_path / 'synthia' / 'RAND_CITYSCAPES'
    _img(str(root / 'RGB' / '0000000.png'))
    lab = np.zeros((H, W, 3), np.uint16)  # BGR as OpenCV writes it
    lab[..., 2] = _grid(SYN_IDS)          # R: class id
    lab[..., 1] = 300 + np.arange(H * W).reshape(H, W)  # G: instance id
    path = root / 'GT' / 'LABELS' / '0000000.png'
    os.makedirs(path.parent, exist_ok=True)
    assert cv2.imwrite(str(path), lab)
    return str(root)


def test_synthia_16bit_labels(synthia_root):
    raw = _grid(SYN_IDS)
    expected = _expected(raw, cl.SYNTHIA_ID_TO_TRAIN_ID)
    assert expected.flat[9] == 255          # 259 is not road
    assert expected.flat[3] == 0 and expected.flat[4] == 18  # road, bicycle
    assert expected.flat[7] == 3 and expected.flat[6] == 9   # wall, terrain
    assert expected.flat[5] == 255 and expected.flat[8] == 255
    raw_ds = SynthiaDataset(data_root=synthia_root, pipeline=LOAD_RAW,
                            label_format='raw')
    np.testing.assert_array_equal(_gt(raw_ds), expected)
    cl.convert_dataset('synthia', synthia_root)
    ds = SynthiaDataset(data_root=synthia_root, pipeline=LOAD)
    assert ds.get_data_info(0)['seg_map_path'].endswith(
        'GT/LABELS/0000000_labelTrainIds.png')
    np.testing.assert_array_equal(_gt(ds), expected)
    assert len(SynthiaDataset.CLASSES_16) == 16


# --------------------------------------------------------------------- ACDC
ACDC_IDS = [7, 8, 24, 25, 26, 0, 20, 19, 17, 22, 23, 32]


@pytest.fixture
def acdc_root(tmp_path):
    root = tmp_path / 'acdc'
    for i, cond in enumerate(('fog', 'night', 'rain', 'snow')):
        seq = f'GOPR04{70 + i}'
        stem = f'{seq}_frame_0000{i}1'
        _img(str(root / 'rgb_anon' / cond / 'val' / seq / f'{stem}_rgb_anon.png'), i)
        ids = np.roll(_grid(ACDC_IDS), i)
        gt = root / 'gt' / cond / 'val' / seq
        _grey_png(str(gt / f'{stem}_gt_labelIds.png'), ids)
        _grey_png(str(gt / f'{stem}_gt_labelTrainIds.png'),
                  _expected(ids, cl.CITYSCAPES_ID_TO_TRAIN_ID))
        # the colour visualisation ACDC also ships must not be picked up
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(
            str(gt / f'{stem}_gt_labelColor.png'))
    return str(root)


def test_acdc_conditions_and_labels(acdc_root):
    ds = ACDCDataset(data_root=acdc_root, pipeline=LOAD)
    assert len(ds) == 4
    assert sorted(ds.get_data_info(i)['condition'] for i in range(4)) == [
        'fog', 'night', 'rain', 'snow']
    night = ACDCDataset(data_root=acdc_root, conditions='night', pipeline=LOAD)
    assert len(night) == 1
    info = night.get_data_info(0)
    assert info['seg_map_path'].endswith('_gt_labelTrainIds.png')
    assert '/rgb_anon/night/val/' in info['img_path']
    expected = _expected(np.roll(_grid(ACDC_IDS), 1),
                         cl.CITYSCAPES_ID_TO_TRAIN_ID)
    np.testing.assert_array_equal(_gt(night), expected)
    assert set(np.unique(expected)) == {0, 1, 5, 6, 7, 9, 10, 11, 12, 13, 17, 255}
    raw = ACDCDataset(data_root=acdc_root, conditions=['night'],
                      pipeline=LOAD_RAW, label_format='raw')
    np.testing.assert_array_equal(_gt(raw), expected)


def test_acdc_bad_arguments(acdc_root):
    with pytest.raises(ValueError, match='conditions'):
        ACDCDataset(data_root=acdc_root, conditions='dusk', pipeline=LOAD)
    with pytest.raises(ValueError, match='split'):
        ACDCDataset(data_root=acdc_root, split='dev', pipeline=LOAD)
    with pytest.raises(FileNotFoundError, match='rgb_anon'):
        ACDCDataset(data_root=acdc_root, split='train', pipeline=LOAD)


# --------------------------------------------------------------- Cityscapes
def test_cityscapes_label_ids_converted_for_mmseg(tmp_path):
    root = tmp_path / 'cityscapes'
    stem = 'frankfurt_000000_000294'
    _img(str(root / 'leftImg8bit' / 'val' / 'frankfurt' / f'{stem}_leftImg8bit.png'))
    ids = _grid([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27,
                 28, 31, 32, 33, 0, 4, 6, 9, 30])
    _palette_png(str(root / 'gtFine' / 'val' / 'frankfurt' /
                     f'{stem}_gtFine_labelIds.png'), ids)
    written = cl.convert_dataset('cityscapes', str(root))
    assert [osp.basename(p) for p in written] == [f'{stem}_gtFine_labelTrainIds.png']
    ds = DATASETS.build(dict(
        type='CityscapesDataset', data_root=str(root),
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=LOAD))
    assert tuple(ds.metainfo['classes']) == cl.CLASSES
    gt = _gt(ds)
    # all 19 classes in order, then four ignored ids
    np.testing.assert_array_equal(gt.flat[:19], np.arange(19))
    assert (gt.flat[19:] == 255).all()


# ------------------------------------------------------------------ BDD100K
def test_bdd100k_train_ids_read_by_mmseg(tmp_path):
    root = tmp_path / 'bdd100k'
    name = '7d2f7975-e0c1c5a7'
    os.makedirs(root / 'images' / '10k' / 'val')
    arr = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    Image.fromarray(arr).save(str(root / 'images' / '10k' / 'val' / f'{name}.jpg'))
    lab = _grid(list(range(19)) + [255] * 5)
    _grey_png(str(root / 'labels' / 'sem_seg' / 'masks' / 'val' / f'{name}.png'), lab)
    ds = DATASETS.build(dict(
        type='BDD100KDataset', data_root=str(root),
        data_prefix=dict(img_path='images/10k/val',
                         seg_map_path='labels/sem_seg/masks/val'),
        pipeline=LOAD))
    assert len(ds) == 1 and tuple(ds.metainfo['classes']) == cl.CLASSES
    np.testing.assert_array_equal(_gt(ds), lab)


# ---------------------------------------------------------------- Mapillary
def test_mapillary_v12_mapped_to_19(tmp_path):
    from mmseg.datasets import MapillaryDataset_v1
    assert tuple(MapillaryDataset_v1.METAINFO['classes']) == cl.MAPILLARY_V12_CLASSES
    root = tmp_path / 'mapillary'
    key = '_1Gn_xkw7sa_i9GU4mkxxQ'
    os.makedirs(root / 'validation' / 'images')
    arr = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    Image.fromarray(arr).save(str(root / 'validation' / 'images' / f'{key}.jpg'))
    name = cl.MAPILLARY_V12_CLASSES.index
    raw = _grid([name('Road'), name('Lane Marking - General'), name('Curb'),
                 name('Bicyclist'), name('Other Rider'), name('On Rails'),
                 name('Traffic Sign (Front)'), name('Traffic Sign (Back)'),
                 name('Utility Pole'), name('Car Mount'), name('Ego Vehicle'),
                 name('Unlabeled'), name('Bird'), name('Person'),
                 name('Bicycle'), name('Motorcycle')])
    _palette_png(str(root / 'validation' / 'v1.2' / 'labels' / f'{key}.png'), raw)
    expected = _grid([0, 0, 1, 12, 12, 16, 7, 255, 5, 255, 255, 255, 255, 11,
                      18, 17])
    raw_ds = MapillaryCityscapesDataset(data_root=str(root), pipeline=LOAD_RAW,
                                        label_format='raw')
    np.testing.assert_array_equal(_gt(raw_ds), expected)
    cl.convert_dataset('mapillary', str(root))
    ds = MapillaryCityscapesDataset(data_root=str(root), pipeline=LOAD)
    assert 'labels_cityscapes19' in ds.get_data_info(0)['seg_map_path']
    np.testing.assert_array_equal(_gt(ds), expected)
    # every Cityscapes class is reachable from some Mapillary class
    assert sorted(set(cl.MAPILLARY_V12_ID_TO_TRAIN_ID.values())) == list(range(19))


# ------------------------------------------------------------------- errors
def test_label_mapping_errors(tmp_path):
    with pytest.raises(ValueError, match='unknown label mapping'):
        cl.to_train_ids(np.zeros((2, 2), np.uint8), 'kitti')
    with pytest.raises(ValueError, match='unknown dataset'):
        cl.convert_dataset('kitti', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='no raw gta5 label files'):
        os.makedirs(tmp_path / 'empty' / 'labels')
        cl.convert_dataset('gta5', str(tmp_path / 'empty'))
    colour = tmp_path / 'colour.png'
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(str(colour))
    with pytest.raises(ValueError, match='colour visualisation'):
        cl.read_label(str(colour), 'gta5')
    # negative (signed) ids are ignored, not wrapped
    out = cl.to_train_ids(np.array([[-1, 7]], np.int32), 'cityscapes')
    np.testing.assert_array_equal(out, [[255, 0]])
