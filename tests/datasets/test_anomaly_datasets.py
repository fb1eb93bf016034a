"""MVTec AD (zero masks for good images) and VisA (split CSV) fixtures."""
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

import clipdense.datasets  # noqa: F401
from clipdense.datasets import MVTecADDataset, VisADataset

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnomalyAnnotations'),
    dict(type='Resize', scale=(16, 16), keep_ratio=False),
    dict(type='PackAnomalyInputs'),
]


def _png(path, arr):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def make_mvtec(root, w=24, h=20):
    rng = np.random.default_rng(0)
    for cat in ('metal_nut', 'wood'):
        for sub, n in (('train/good', 1), ('test/good', 2), ('test/scratch', 2)):
            for i in range(n):
                _png(osp.join(root, cat, sub, f'{i:03d}.png'),
                     rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for i in range(2):
            m = np.zeros((h, w), np.uint8)
            m[4:10, 5:12] = 255
            _png(osp.join(root, cat, 'ground_truth/scratch', f'{i:03d}_mask.png'), m)
    return root


def make_visa(root, rows=None, header='object,split,label,image,mask'):
    rng = np.random.default_rng(1)
    if rows is None:
        rows = []
        for obj in ('macaroni1', 'pcb1'):
            for i in range(2):
                img = f'{obj}/Data/Images/Normal/{i:04d}.JPG'
                _png(osp.join(root, img), rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
                rows.append(f'{obj},test,normal,{img},')
                rows.append(f'{obj},train,normal,{img},')
                img = f'{obj}/Data/Images/Anomaly/{i:03d}.JPG'
                mask = f'{obj}/Data/Masks/Anomaly/{i:03d}.png'
                _png(osp.join(root, img), rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
                m = np.zeros((30, 40), np.uint8)
                m[3:9, 10:20] = 1 + i  # VisA masks may hold small ids: still anomalous
                _png(osp.join(root, mask), m)
                rows.append(f'{obj},test,anomaly,{img},{mask}')
    os.makedirs(osp.join(root, 'split_csv'), exist_ok=True)
    with open(osp.join(root, 'split_csv', '1cls.csv'), 'w') as f:
        f.write(header + '\n' + '\n'.join(rows) + '\n')
    return root


def test_mvtec_good_images_get_zero_masks(tmp_path):
    init_default_scope('clipdense')
    root = make_mvtec(str(tmp_path / 'mvtec'))
    ds = MVTecADDataset(data_root=root, pipeline=PIPELINE)
    assert len(ds) == 8
    pipe_out = [ds[i] for i in range(len(ds))]
    for out in pipe_out:
        s = out['data_samples']
        mask = s.gt_sem_seg.data
        assert mask.shape == (1, 16, 16)
        assert s.anomaly == int(mask.sum() > 0)
        assert s.cls_name in ('metal nut', 'wood')
    assert sum(o['data_samples'].anomaly for o in pipe_out) == 4


def test_visa_csv(tmp_path):
    init_default_scope('clipdense')
    root = make_visa(str(tmp_path / 'visa'))
    ds = VisADataset(data_root=root, pipeline=PIPELINE)
    assert len(ds) == 8  # train rows dropped
    names = {ds.get_data_info(i)['cls_name'] for i in range(len(ds))}
    assert names == {'macaroni', 'pcb1'}  # AnoVL's macaroni fix
    out = [ds[i]['data_samples'] for i in range(len(ds))]
    for s in out:
        assert s.gt_sem_seg.data.shape == (1, 16, 16)
        assert int(s.gt_sem_seg.data.max()) == s.anomaly
    only = VisADataset(data_root=root, categories=['pcb1'], pipeline=PIPELINE)
    assert len(only) == 4 and {only.get_data_info(i)['category'] for i in range(4)} == {'pcb1'}


def test_raw_folder_names(tmp_path):
    """readable_names=False: the prompts get the folder name, as AnoVL."""
    init_default_scope('clipdense')
    root = make_mvtec(str(tmp_path / 'mvtec'))
    ds = MVTecADDataset(data_root=root, pipeline=PIPELINE, readable_names=False)
    assert {ds.get_data_info(i)['cls_name'] for i in range(len(ds))} == {'metal_nut', 'wood'}
    vroot = make_visa(str(tmp_path / 'visa'))
    vds = VisADataset(data_root=vroot, pipeline=PIPELINE, readable_names=False,
                      name_map={'pcb1': 'pc_b'})
    # a given name_map replaces the default macaroni one
    assert {vds.get_data_info(i)['cls_name'] for i in range(len(vds))} == {'macaroni1', 'pc_b'}


def test_pil_anomaly_resize():
    """PIL bilinear (antialiased) image resize; mask bilinear then > 0.5;
    an int scale is the short side (torchvision's rule)."""
    from PIL import Image

    from clipdense.datasets.transforms import PILAnomalyResize
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:21, 10:31] = 1
    out = PILAnomalyResize(scale=(30, 20))(dict(img=img.copy(), gt_seg_map=mask.copy()))
    expect = np.asarray(Image.fromarray(img).resize((30, 20), Image.BILINEAR))
    assert out['img'].shape == (20, 30, 3) and np.array_equal(out['img'], expect)
    m = np.asarray(Image.fromarray(mask * 255).resize((30, 20), Image.BILINEAR)) / 255.0
    assert np.array_equal(out['gt_seg_map'], (m > 0.5).astype(np.uint8))
    assert out['img_shape'] == (20, 30)
    short = PILAnomalyResize(scale=24)(dict(img=img.copy()))
    assert short['img'].shape == (24, 36, 3)
    tall = PILAnomalyResize(scale=24)(dict(img=np.zeros((70, 40, 3), np.uint8)))
    assert tall['img'].shape == (42, 24, 3)
    with pytest.raises(ValueError, match='scale'):
        PILAnomalyResize(scale=(0, 3))


def test_visa_bad_input(tmp_path):
    root = str(tmp_path / 'v1')
    make_visa(root, header='object,split,label,image')
    with pytest.raises(ValueError, match="missing columns \\['mask'\\]"):
        VisADataset(data_root=root)
    root = str(tmp_path / 'v2')
    make_visa(root, rows=['candle,test,anomaly,candle/a.JPG,'])
    with pytest.raises(ValueError, match='has no mask path'):
        VisADataset(data_root=root)
    root = str(tmp_path / 'v3')
    make_visa(root, rows=['candle,test,broken,candle/a.JPG,'])
    with pytest.raises(ValueError, match="'normal' or 'anomaly'"):
        VisADataset(data_root=root)
    root = str(tmp_path / 'v4')
    make_visa(root, rows=['candle,test,normal,candle/missing.JPG,'])
    with pytest.raises(FileNotFoundError, match='missing.JPG'):
        VisADataset(data_root=root)
    with pytest.raises(FileNotFoundError, match='1cls.csv'):
        VisADataset(data_root=str(tmp_path / 'nothing'))
    with pytest.raises(ValueError, match='do not occur'):
        VisADataset(data_root=str(tmp_path / 'v4'), categories=['cable'], check_files=False)


def test_load_annotations_bad_input(tmp_path):
    from clipdense.datasets.transforms import LoadAnomalyAnnotations
    t = LoadAnomalyAnnotations()
    with pytest.raises(KeyError, match='LoadImageFromFile'):
        t(dict(seg_map_path=None))
    with pytest.raises(ValueError, match='marked anomalous'):
        t(dict(img=np.zeros((4, 4, 3), np.uint8), seg_map_path=None, anomaly=1))
    p = str(tmp_path / 'm.png')
    _png(p, np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match='must match'):
        t(dict(img=np.zeros((4, 4, 3), np.uint8), seg_map_path=p, anomaly=1))
