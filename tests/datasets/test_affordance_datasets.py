"""AffordanceCLIP data: RefCOCO-format referring masks (polygons, RLE) and
the AGD20K Seen / Unseen test trees, on fixtures in the real layouts."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from clipdense.datasets.agd20k import SEEN_ACTIONS, UNSEEN_ACTIONS
from clipdense.datasets.synthetic.writers import rle_encode
from clipdense.registry import DATASETS, TRANSFORMS

META = ('img_path', 'ori_shape', 'img_shape', 'text')


def _save(path, arr):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def _refcoco_fixture(root):
    """Two COCO images, three referred annotations: a polygon (RefCOCO's own
    format), an uncompressed RLE and a compressed RLE."""
    H, W = 20, 30
    _save(osp.join(root, 'images', 'COCO_train2014_000000000001.jpg'),
          np.full((H, W, 3), 128, np.uint8))
    _save(osp.join(root, 'images', 'COCO_train2014_000000000002.jpg'),
          np.full((H, W, 3), 64, np.uint8))
    rect = np.zeros((H, W), np.uint8)
    rect[5:15, 10:20] = 1
    other = np.zeros((H, W), np.uint8)
    other[2:6, 1:4] = 1
    uncompressed = {'size': [H, W],
                    'counts': _counts(other)}
    instances = {
        'images': [{'id': 1, 'file_name': 'COCO_train2014_000000000001.jpg',
                    'height': H, 'width': W},
                   {'id': 2, 'file_name': 'COCO_train2014_000000000002.jpg',
                    'height': H, 'width': W}],
        'annotations': [
            # polygon of the rectangle rows 5..14, cols 10..19 (pixel corners)
            {'id': 11, 'image_id': 1, 'category_id': 1,
             'segmentation': [[10, 5, 20, 5, 20, 15, 10, 15]]},
            {'id': 12, 'image_id': 1, 'category_id': 2, 'segmentation': uncompressed},
            {'id': 13, 'image_id': 2, 'category_id': 1,
             'segmentation': rle_encode(rect.astype(bool))},
        ],
        'categories': [{'id': 1, 'name': 'cup'}, {'id': 2, 'name': 'knife'}]}
    sents = lambda *ss: [{'sent_id': i, 'raw': s, 'sent': s, 'tokens': s.split()}  # noqa
                         for i, s in enumerate(ss)]
    refs = [
        {'ref_id': 0, 'ann_id': 11, 'image_id': 1, 'split': 'train', 'category_id': 1,
         'file_name': 'COCO_train2014_000000000001_0.jpg',
         'sentences': sents('cup in the middle', 'the white cup')},
        {'ref_id': 1, 'ann_id': 12, 'image_id': 1, 'split': 'train', 'category_id': 2,
         'file_name': 'x', 'sentences': sents('knife top left')},
        {'ref_id': 2, 'ann_id': 13, 'image_id': 2, 'split': 'val', 'category_id': 1,
         'file_name': 'y', 'sentences': sents('the cup')},
    ]
    d = osp.join(root, 'refcoco')
    os.makedirs(d, exist_ok=True)
    json.dump(instances, open(osp.join(d, 'instances.json'), 'w'))
    json.dump(refs, open(osp.join(d, 'refs(unc).json'), 'w'))
    return rect, other


def _counts(mask):
    flat = mask.ravel(order='F')
    counts, val, run = [], 0, 0
    for v in flat:
        if v != val:
            counts.append(run)
            run, val = 0, v
        run += 1
    counts.append(run)
    return counts


def _refseg(root, split, **kw):
    return DATASETS.build(dict(
        type='RefSegDataset', data_root=str(root), dataset='refcoco',
        refs_file='refs(unc).json', split=split, img_dir='images',
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadReferringMask'),
                  dict(type='PackSegInputs', meta_keys=META)], **kw))


def test_referring_masks_from_polygon_and_rle(tmp_path):
    rect, other = _refcoco_fixture(tmp_path)
    ds = _refseg(tmp_path, 'train')
    assert len(ds) == 3  # one sample per sentence
    texts = [ds.get_data_info(i)['text'] for i in range(3)]
    assert texts == ['cup in the middle', 'the white cup', 'knife top left']
    s0 = ds[0]
    assert s0['data_samples'].metainfo['text'] == 'cup in the middle'
    poly = s0['data_samples'].gt_sem_seg.data[0].numpy()
    assert set(np.unique(poly)) == {0, 1}
    # pycocotools rasterises the polygon; it covers the rectangle (+- its edge)
    inter = (poly & rect).sum()
    assert inter >= 0.9 * rect.sum() and poly.sum() <= 1.3 * rect.sum()
    rle = ds[2]['data_samples'].gt_sem_seg.data[0].numpy()
    np.testing.assert_array_equal(rle, other)
    val = _refseg(tmp_path, 'val')
    np.testing.assert_array_equal(val[0]['data_samples'].gt_sem_seg.data[0].numpy(),
                                  rect)


def test_referring_mask_bad_input(tmp_path):
    t = TRANSFORMS.build(dict(type='LoadReferringMask'))
    with pytest.raises(KeyError, match='segmentation'):
        t(dict(img=np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(ValueError, match='empty segmentation'):
        t(dict(segmentation=[], height=4, width=4))
    m = np.zeros((4, 4), bool)
    m[1, 1] = True
    with pytest.raises(ValueError, match='before resizing'):
        t(dict(segmentation=rle_encode(m), height=4, width=4,
               img=np.zeros((8, 8, 3), np.uint8)))
    out = t(dict(segmentation=rle_encode(m), height=4, width=4))
    assert out['gt_seg_map'].dtype == np.uint8 and out['gt_seg_map'].sum() == 1
    assert out['seg_fields'] == ['gt_seg_map']


def _agd_fixture(root, split, actions, test_dir='testset'):
    """Real AGD20K layout: JPEG egocentric images, PNG GT; one image has no
    GT (the reference code skips it)."""
    base = osp.join(root, split, test_dir)
    n = 0
    for a in actions:
        for obj in ('cup', 'knife'):
            for k in range(2):
                name = f'{obj}_{k:06d}'
                _save(osp.join(base, 'egocentric', a, obj, name + '.jpg'),
                      np.full((12, 16, 3), 100, np.uint8))
                if (a, obj, k) == (actions[0], 'knife', 1):
                    continue
                gt = np.zeros((12, 16), np.uint8)
                gt[2:5, 3:7] = 255
                _save(osp.join(base, 'GT', a, obj, name + '.png'), gt)
                n += 1
    return n


@pytest.mark.parametrize('split,actions', [('Seen', ('drink_with', 'hold')),
                                           ('Unseen', ('cut_with', 'pick_up'))])
def test_agd20k_seen_and_unseen_layouts(tmp_path, split, actions):
    assert len(SEEN_ACTIONS) == 36 and len(UNSEEN_ACTIONS) == 25
    assert set(UNSEEN_ACTIONS) <= set(SEEN_ACTIONS)
    n = _agd_fixture(tmp_path, split, actions)
    other = 'Unseen' if split == 'Seen' else 'Seen'
    _agd_fixture(tmp_path, other, ('kick', ))  # the other split must not leak in
    ds = DATASETS.build(dict(
        type='AGD20KDataset', data_root=str(tmp_path), split=split,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='Resize', scale=(8, 8), keep_ratio=False),
                  dict(type='LoadAffordanceHeatmap'),
                  dict(type='PackSegInputs', meta_keys=META + ('action', 'object'))]))
    assert len(ds) == n == 7
    assert ds.metainfo['classes'] == tuple(sorted(actions))
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert {i['action'] for i in infos} == set(actions)
    assert all(i['img_path'].endswith('.jpg') and i['gt_path'].endswith('.png')
               for i in infos)
    assert infos[0]['text'] == actions[0].replace('_', ' ')
    sample = ds[0]
    gt = sample['data_samples'].gt_sem_seg.data[0].numpy()
    assert gt.shape == (12, 16)  # GT keeps its size, the image is resized
    assert sample['inputs'].shape[-2:] == (8, 8)
    assert gt.max() == 255 and (gt == 255).sum() == 12
    assert sample['data_samples'].metainfo['action'] == actions[0]


def test_agd20k_options_and_errors(tmp_path):
    _agd_fixture(tmp_path, 'Seen', ('hold', 'cut'), test_dir='testsetv2')
    ds = DATASETS.build(dict(type='AGD20KDataset', data_root=str(tmp_path),
                             split='Seen', test_dir='testsetv2', actions=['cut']))
    assert len(ds) == 4 and ds.metainfo['classes'] == ('cut', )
    ds = DATASETS.build(dict(type='AGD20KDataset', data_root=str(tmp_path),
                             split='Seen', test_dir='testsetv2',
                             action_prompts={'hold': 'holding'}))
    texts = {ds.get_data_info(i)['action']: ds.get_data_info(i)['text']
             for i in range(len(ds))}
    assert texts == {'hold': 'holding', 'cut': 'cut'}
    with pytest.raises(ValueError, match='empty prompts'):
        DATASETS.build(dict(type='AGD20KDataset', data_root=str(tmp_path),
                            split='Seen', test_dir='testsetv2',
                            action_prompts={'hold': ' '}))
    with pytest.raises(ValueError, match="'Seen', 'Unseen'"):
        DATASETS.build(dict(type='AGD20KDataset', data_root=str(tmp_path), split='seen'))
    with pytest.raises(FileNotFoundError, match='egocentric'):
        DATASETS.build(dict(type='AGD20KDataset', data_root=str(tmp_path), split='Unseen'))
    with pytest.raises(ValueError, match='no folder'):
        DATASETS.build(dict(type='AGD20KDataset', data_root=str(tmp_path),
                            split='Seen', test_dir='testsetv2', actions=['peel']))
    t = TRANSFORMS.build(dict(type='LoadAffordanceHeatmap'))
    with pytest.raises(KeyError, match='gt_path'):
        t(dict())
    with pytest.raises(FileNotFoundError):
        t(dict(gt_path=str(tmp_path / 'missing.png')))
