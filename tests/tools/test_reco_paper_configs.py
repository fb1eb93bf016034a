"""ReCo's three paper configs (Cityscapes-27, COCO-Stuff-27, KITTI-STEP)
evaluated end to end with ``tools/test.py``: the config's own dataset,
test pipeline, segmentor and metric, on a tiny fake dataset written here in
that dataset's real folder layout and aspect ratio (sizes divided by 4-8),
labels prepared with tools/dataset_converters/reco_benchmarks.py. Only the
networks are swapped for untrained tiny ones (no weights can be downloaded
in tests), k is 3 and the text side uses one template; the CRF stays on.

Before issue 22 the test pipelines resized and cropped the ground truth but
returned the prediction at the original size, and mmseg's IoUMetric raised
IndexError on all three.
"""
import importlib.util
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from clipdense.testing.runs import PY, ROOT, run_tool

pytestmark = pytest.mark.slow

spec = importlib.util.spec_from_file_location(
    'reco_benchmarks', osp.join(ROOT, 'tools/dataset_converters/reco_benchmarks.py'))
rb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rb)


def _img(rng, h, w):
    """A scene: sky above, ground below, a box (so GT and image agree)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:h // 2] = (200, 150, 90)
    img[h // 2:] = (90, 90, 90)
    y, x = rng.randint(h // 4, h // 2), rng.randint(0, w // 2)
    img[y:y + h // 4, x:x + w // 4] = (30, 30, 200)
    img = np.clip(img + rng.randint(0, 20, img.shape), 0, 255).astype(np.uint8)
    return img, (y, x, h // 4, w // 4)


def _cityscapes(root, rng):
    """leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png and
    gtFine/.../*_gtFine_labelIds.png, 2048x1024 / 8."""
    for city, stem in (('frankfurt', 'frankfurt_000000_000294'),
                       ('lindau', 'lindau_000001_000019')):
        img, (y, x, bh, bw) = _img(rng, 128, 256)
        lab = np.full((128, 256), 23, np.uint8)  # sky
        lab[64:] = 7  # road
        lab[y:y + bh, x:x + bw] = 26  # car
        lab[:4] = 0  # unlabeled
        for sub, name, arr in (('leftImg8bit', '_leftImg8bit.png', img),
                               ('gtFine', '_gtFine_labelIds.png', lab)):
            d = osp.join(root, sub, 'val', city)
            os.makedirs(d, exist_ok=True)
            cv2.imwrite(osp.join(d, stem + name), arr)
    assert rb.cityscapes27(root, ('val', )) == 2


def _cocostuff(root, rng):
    """images/val2017/<id>.jpg, annotations/val2017/<id>.png (stuffthingmaps,
    COCO id - 1), curated/val2017/Coco164kFull_Stuff_Coarse.txt; a
    landscape 640x427 and a portrait 480x640 image, / 4."""
    ids = ('000000000139', '000000000285')
    for i, (h, w) in zip(ids, ((107, 160), (160, 120))):
        img, (y, x, bh, bw) = _img(rng, h, w)
        lab = np.full((h, w), 156, np.uint8)  # sky-other
        lab[h // 2:] = 148  # road
        lab[y:y + bh, x:x + bw] = 2  # car
        lab[-3:] = 255  # unlabelled
        for sub, name, arr in (('images', '.jpg', img), ('annotations', '.png', lab)):
            d = osp.join(root, sub, 'val2017')
            os.makedirs(d, exist_ok=True)
            cv2.imwrite(osp.join(d, i + name), arr)
    os.makedirs(osp.join(root, 'curated', 'val2017'))
    with open(osp.join(root, 'curated', 'val2017', 'Coco164kFull_Stuff_Coarse.txt'), 'w') as f:
        f.write('\n'.join(ids) + '\n')
    assert rb.cocostuff27(root, splits=('val', )) == 2


def _kitti_step(root, rng):
    """images/val/<seq>/<frame>.png and panoptic_maps/val/<seq>/<frame>.png
    (semantic id in red, instance in green/blue), 1242x375 / 3."""
    for seq, frame in (('0002', '000000'), ('0006', '000012')):
        img, (y, x, bh, bw) = _img(rng, 125, 414)
        pan = np.zeros((125, 414, 3), np.uint8)
        pan[..., 0] = 10  # sky
        pan[62:, :, 0] = 0  # road
        pan[y:y + bh, x:x + bw, 0] = 13  # car
        pan[y:y + bh, x:x + bw, 1] = 1  # instance 1
        pan[:3, :, 0] = 255  # void
        for sub, arr in (('images', img), ('panoptic_maps', pan[:, :, ::-1])):
            d = osp.join(root, sub, 'val', seq)
            os.makedirs(d, exist_ok=True)
            cv2.imwrite(osp.join(d, frame + '.png'), arr)
    assert rb.kitti_step(root, ('val', )) == 2


def _pool(folder, rng, n=8):
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        cv2.imwrite(osp.join(folder, f'{i:02d}.png'), _img(rng, 60, 80)[0])
    return folder


CASES = {
    'cityscapes27': ('reco_rn50x16-openai_cityscapes27-320x320.py', _cityscapes, 27, (320, 320)),
    'cocostuff27': ('reco_rn50x16-openai_cocostuff27-320x320.py', _cocostuff, 27, (320, 320)),
    'kitti_step': ('reco_rn50x16-openai_kitti-step.py', _kitti_step, 19, (125, 414)),
}


def _tiny_config(tmp_path, paper_cfg, data_root, pool):
    """The paper config with untrained tiny networks and a tiny pool."""
    text = f'''
_base_ = [{osp.join(ROOT, 'configs/reco', paper_cfg)!r}]
model = dict(
    clip_backbone=dict(arch='clipdense-synth-rn', pretrained=None, out_indices=(2, 3)),
    dense_encoder=dict(model_name='deit_tiny_distilled_patch16_224', pretrained=None),
    decode_head=dict(
        text_encoder=dict(arch='clipdense-synth-rn', pretrained=None, templates='single'),
        k=3),
    index=dict(_delete_=True, folder={pool!r}, cache_file={str(tmp_path / 'index.npz')!r},
               progress=False, batch_size=8),
    archive_batch_size=3,
    reference_cache={str(tmp_path / 'references')!r})
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root={data_root!r}))
'''
    path = tmp_path / 'tiny.py'
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('name', sorted(CASES))
def test_paper_config_evaluates_end_to_end(name, tmp_path):
    from mmengine.config import Config
    paper_cfg, make, n_classes, frame = CASES[name]
    rng = np.random.RandomState(0)
    data_root = str(tmp_path / name)
    make(data_root, rng)
    cfg_path = _tiny_config(tmp_path, paper_cfg, data_root, _pool(str(tmp_path / 'pool'), rng))

    # what the paper config itself says (the tiny one only swaps networks)
    paper = Config.fromfile(osp.join(ROOT, 'configs/reco', paper_cfg))
    assert paper.model.crf is not None
    assert paper.model.decode_head.column_slicing == 'reference_code'
    assert paper.model.decode_head.progressive_context_elimination
    steps = [t['type'] for t in paper.test_dataloader.dataset.pipeline]
    if name == 'kitti_step':
        assert steps == ['LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs']
    else:
        assert steps == ['LoadImageFromFile', 'LoadAnnotations', 'CenterCropFrame',
                         'PackSegInputs']

    # the dataset, the pipeline's frame: ground truth of the scored size
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from clipdense.registry import DATASETS
    tiny = Config.fromfile(cfg_path)
    ds_cfg = tiny.test_dataloader.dataset
    ds = DATASETS.build(ds_cfg)
    assert len(ds) == 2 and len(ds.metainfo['classes']) == n_classes
    sample = ds[0]['data_samples']
    assert tuple(sample.gt_sem_seg.data.shape[-2:]) == frame
    assert tuple(sample.ori_shape) == frame  # the prediction comes back at this size

    work, preds = str(tmp_path / 'work'), tmp_path / 'preds'
    proc = run_tool([PY, 'tools/test.py', cfg_path, 'none', '--work-dir', work,
                     '--out', str(preds)], timeout=900)
    out = proc.stdout + proc.stderr
    miou = re.search(r'mIoU: (\d+\.\d+)', out)
    print(f'{name}: mIoU {miou.group(1) if miou else None}')
    assert miou, out[-3000:]
    assert 'IndexError' not in out
    # the predictions the metric scored: in the ground truth's frame, and
    # class ids of the benchmark (COCO-Stuff: coarse ids, mapped from 171)
    written = sorted(os.listdir(preds))
    assert len(written) == 2
    for f in written:
        pred = cv2.imread(str(preds / f), cv2.IMREAD_UNCHANGED)
        assert pred.shape == frame and pred.max() < n_classes
    # the references went to the disk cache (safetensors, one per concept)
    cached = os.listdir(tmp_path / 'references')
    assert cached and all(f.endswith('.safetensors') for f in cached)


def test_paper_config_pseudo_labels_cover_the_crop_in_the_image_frame(tmp_path):
    """ReCo+'s first step on the Cityscapes-27 paper config
    (tools/dataset_converters/reco_pseudo_labels.py): label maps of the
    images' size, the centre crop labelled, 255 where the crop did not
    reach (2048x1024 / 8 -> 320x640 -> columns 160..479 -> 64..191)."""
    rng = np.random.RandomState(0)
    data_root = str(tmp_path / 'cityscapes')
    _cityscapes(data_root, rng)
    cfg_path = _tiny_config(tmp_path, CASES['cityscapes27'][0], data_root,
                            _pool(str(tmp_path / 'pool'), rng))
    out = tmp_path / 'pseudo'
    run_tool([PY, 'tools/dataset_converters/reco_pseudo_labels.py', cfg_path,
              '--img-dir', osp.join(data_root, 'leftImg8bit', 'val'),
              '--out-dir', str(out)], timeout=900)
    lab = cv2.imread(str(out / 'frankfurt' / 'frankfurt_000000_000294_leftImg8bit.png'),
                     cv2.IMREAD_UNCHANGED)
    assert lab.shape == (128, 256)
    assert (lab[:, :64] == 255).all() and (lab[:, 192:] == 255).all()
    assert (lab[:, 64:192] < 27).all()
    assert (out / 'meta.json').is_file()
