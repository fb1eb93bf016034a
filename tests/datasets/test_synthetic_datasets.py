"""Dataset classes reading the synthetic world in the real layouts."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from clipdense.datasets.synthetic import generate_world, spec
from clipdense.registry import DATASETS
from clipdense.utils import register_all_modules

TINY = dict(size=64, num_train=3, num_val=2, clip_size=32, num_clip_train=2,
            num_clip_val=1, num_cls_per_class=1, num_anomaly_train=2,
            num_anomaly_good=2, num_anomaly_defect=2, num_refer_train=4,
            num_refer_val=2, num_agd_per_pair=2, progress=False)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    register_all_modules()
    out = tmp_path_factory.mktemp('dsworld') / 'synthetic'
    return generate_world(str(out), seed=0, **TINY)


def test_seg_dataset_through_registry_and_pipeline(world):
    from mmengine.registry import DefaultScope
    assert DefaultScope.get_current_instance().scope_name == 'clipdense'
    ds = DATASETS.build(dict(
        type='SyntheticSegDataset', data_root=world['root'],
        data_prefix=dict(img_path='fog/img_dir/train',
                         seg_map_path='fog/ann_dir/train'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')]))
    assert type(ds).__name__ == 'SyntheticSegDataset'
    assert len(ds) == 3
    assert ds.metainfo['classes'] == spec.CLASSES
    assert len(ds.metainfo['palette']) == len(spec.CLASSES)
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 64, 64)
    seg = sample['data_samples'].gt_sem_seg.data.numpy()[0]
    ref = np.array(Image.open(osp.join(world['seg']['fog'], 'ann_dir',
                                       'train', 'fog_train_00000.png')))
    np.testing.assert_array_equal(seg, ref)


def test_seg_dataset_style_split_and_class_subset(world):
    ds = DATASETS.build(dict(type='SyntheticSegDataset',
                             data_root=world['root'], style='night',
                             split='val', pipeline=[]))
    assert len(ds) == 2
    assert ds[0]['img_path'].endswith('night/img_dir/val/night_val_00000.png')
    # A class subset (the open-vocabulary seen split) maps the others to 255.
    seen = DATASETS.build(dict(
        type='SyntheticSegDataset', data_root=world['root'], style='flat',
        split='train', metainfo=dict(classes=spec.SEEN_CLASSES),
        pipeline=[]))
    lm = seen.metainfo['label_map']
    for c in spec.UNSEEN_CLASSES:
        assert lm[spec.CLASSES.index(c)] == 255
    with pytest.raises(ValueError):
        DATASETS.build(dict(type='SyntheticSegDataset',
                            data_root=world['root'], style='sepia'))


def test_coco_dataset_with_mmdet_pipeline(world):
    ds = DATASETS.build(dict(
        type='SyntheticCocoDataset', data_root=world['root'],
        ann_file='flat/annotations/instances_train.json',
        data_prefix=dict(img='flat/img_dir/train/'),
        pipeline=[dict(type='mmdet.LoadImageFromFile'),
                  dict(type='mmdet.LoadAnnotations', with_bbox=True,
                       with_mask=True),
                  dict(type='mmdet.PackDetInputs')]))
    assert len(ds) >= 1
    found = 0
    for i in range(len(ds)):
        s = ds[i]
        inst = s['data_samples'].gt_instances
        lab = np.array(Image.open(osp.join(
            world['seg']['flat'], 'ann_dir', 'train',
            osp.basename(s['data_samples'].img_path))))
        masks = inst.masks.to_ndarray().astype(bool)
        for m, label in zip(masks, inst.labels.tolist()):
            assert m.any() and (lab[m] == label).all()
            found += 1
    assert found > 0


def test_mvtec_tree_read_with_real_layout(world):
    root = world['anomaly']
    cats = sorted(os.listdir(root))
    assert cats == sorted(spec.ANOMALY_CATEGORIES)
    assert len(cats) >= 3
    for cat, defects in spec.ANOMALY_CATEGORIES.items():
        assert len(defects) >= 2
        assert sorted(os.listdir(osp.join(root, cat))) == [
            'ground_truth', 'test', 'train']
        assert os.listdir(osp.join(root, cat, 'train')) == ['good']
        assert sorted(os.listdir(osp.join(root, cat, 'test'))) == sorted(
            ('good', ) + defects)
        assert sorted(os.listdir(osp.join(root, cat, 'ground_truth'))) == \
            sorted(defects)
    test = DATASETS.build(dict(type='MVTecADDataset', data_root=root))
    assert len(test) == len(cats) * (2 + 2 * 2)
    n_anom = 0
    for info in (test.get_data_info(i) for i in range(len(test))):
        assert info['defect_type'] in ('good', ) + \
            spec.ANOMALY_CATEGORIES[info['category']]
        img = np.array(Image.open(info['img_path']))
        if info['anomaly']:
            n_anom += 1
            stem = osp.splitext(osp.basename(info['img_path']))[0]
            assert info['seg_map_path'].endswith(osp.join(
                info['category'], 'ground_truth', info['defect_type'],
                stem + '_mask.png'))
            mask = np.array(Image.open(info['seg_map_path']))
            assert mask.shape == img.shape[:2]
            assert set(np.unique(mask).tolist()) == {0, 255}
        else:
            assert info['seg_map_path'] is None
    assert n_anom == len(cats) * 2 * 2
    train = DATASETS.build(dict(type='MVTecADDataset', data_root=root,
                                split='train', categories=['tile']))
    assert len(train) == 2
    assert {train.get_data_info(i)['defect_type']
            for i in range(2)} == {'good'}


def test_anomaly_masks_mark_changed_pixels(world):
    """A defect changes the image where its mask is set (rendering the same
    normal sample without the defect is not possible from disk, so compare
    the defect region with the same category's good images' statistics)."""
    from clipdense.datasets.synthetic.anomaly import render_anomaly
    for cat, defects in spec.ANOMALY_CATEGORIES.items():
        for d in defects:
            good, _ = render_anomaly(np.random.default_rng(1), 64, cat)
            bad, mask = render_anomaly(np.random.default_rng(1), 64, cat, d)
            m = mask > 0
            diff = np.abs(good.astype(int) - bad.astype(int)).sum(-1)
            assert m.any()
            # Same rng stream up to the defect: outside the mask unchanged.
            assert diff[m].mean() > 20, (cat, d)
            assert diff[~m].mean() < 1, (cat, d)


def test_agd20k_tree_read_with_real_layout(world):
    root = world['agd']
    ds = DATASETS.build(dict(type='AGD20KDataset', data_root=root))
    pairs = sum(len(o) for o in spec.ACTIONS.values())
    assert len(ds) == pairs * 2
    assert set(ds.metainfo['classes']) == set(spec.ACTIONS)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        rel = osp.relpath(info['img_path'], root).split(os.sep)
        assert rel[:3] == ['Seen', 'testset', 'egocentric']
        assert rel[3:5] == [info['action'], info['object']]
        assert osp.relpath(info['gt_path'], root).split(os.sep)[:5] == [
            'Seen', 'testset', 'GT', info['action'], info['object']]
        assert spec.ACTIONS[info['action']][info['object']]
        gt = np.array(Image.open(info['gt_path']))
        img = Image.open(info['img_path'])
        assert gt.ndim == 2 and gt.shape == img.size[::-1]
        assert gt.max() == 255 and (gt == 0).mean() > 0.3


def test_agd_heat_map_is_on_the_afforded_part():
    from clipdense.datasets.synthetic.affordance import agd_sample
    from clipdense.datasets.synthetic.scene import PART_ID
    for action, objs in spec.ACTIONS.items():
        for cls, part in objs.items():
            scene, k, heat = agd_sample(np.random.default_rng(0), 64,
                                        action, cls)
            assert scene.objects[k].cls == cls
            obj = scene.inst == k + 1
            on_part = obj & (scene.part == PART_ID[part])
            h = heat.astype(float)
            # Of the heat that falls on the object, most is on the part.
            assert h[on_part].sum() > 0.6 * h[obj].sum(), (action, cls)
            others = obj & ~on_part
            if others.any():
                assert h[on_part].mean() > 2 * h[others].mean(), (action, cls)


def test_refer_dataset(world):
    ds = DATASETS.build(dict(type='RefSegDataset',
                             data_root=world['refer']['root'], split='train'))
    val = DATASETS.build(dict(type='RefSegDataset',
                              data_root=world['refer']['root'], split='val',
                              per_sentence=False))
    assert len(ds) > 0 and len(val) > 0
    kinds = set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        kinds.add(info['kind'])
        mask = ds.get_mask(i)
        img = np.array(Image.open(info['img_path']))
        assert mask.shape == img.shape[:2] and mask.any()
        assert info['text'] in info['texts']
        if info['kind'] == 'part':
            assert info['part'] in info['text']
    assert kinds == {'object', 'part'}
    parts = DATASETS.build(dict(type='RefSegDataset', kinds=['part'],
                                data_root=world['refer']['root']))
    assert 0 < len(parts) < len(ds)
    # A part lies inside the object it belongs to.
    import json
    inst = json.load(open(world['refer']['instances']))
    anns = {a['id']: a for a in inst['annotations']}
    from clipdense.datasets import decode_segmentation
    for a in anns.values():
        if 'object_id' in a:
            pm = decode_segmentation(a['segmentation'], 64, 64)
            om = decode_segmentation(anns[a['object_id']]['segmentation'],
                                     64, 64)
            assert not (pm & ~om).any()
