"""The MaskCLIP paper configs: vocabularies in the datasets' class order, and
the VOC "without background" protocol (background ignored, 20 classes)."""
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from clipdense.testing.runs import ROOT

MASKCLIP = osp.join(ROOT, 'configs', 'maskclip')


def readable(name):
    """The rule the configs' comments state (mmseg name -> text): MaskCLIP's
    own class lists (tools/maskclip_utils/prompt_engineering.py of
    chongzhou96/MaskCLIP), e.g. VOC 'airplane', 'dining table'; COCO-Stuff
    'playingfield', 'blind window'."""
    fixed = {'pottedplant': 'potted plant', 'tvmonitor': 'tv monitor',
             'aeroplane': 'airplane', 'diningtable': 'dining table',
             'playingfield': 'playingfield', 'window-blind': 'blind window'}
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r'(.+)-(other|stuff)', name)
    if m:
        return m.group(1)
    if '-' in name:
        a, b = name.split('-')
        return f'{b} {a}'
    return name


CASES = [
    ('maskclip_vit-b16-openai_voc12-20cls-512x512.py', 'PascalVOCDataset', 20),
    ('maskclip_r50-openai_voc12-20cls-512x512.py', 'PascalVOCDataset', 20),
    ('maskclip_vit-b16-openai_voc12-512x512.py', 'PascalVOCDataset', 21),
    ('maskclip_vit-b16-openai_pascal-context-59-520x520.py', 'PascalContextDataset59', 59),
    ('maskclip_r50-openai_pascal-context-59-520x520.py', 'PascalContextDataset59', 59),
    ('maskclip_vit-b16-openai_coco-stuff164k-512x512.py', 'COCOStuffDataset', 171),
    ('maskclip_r50-openai_coco-stuff164k-512x512.py', 'COCOStuffDataset', 171),
]


@pytest.mark.parametrize('name,dataset,k', CASES, ids=[c[0] for c in CASES])
def test_vocabulary_follows_dataset_classes(name, dataset, k):
    import mmseg.datasets as dsets
    cfg = Config.fromfile(osp.join(MASKCLIP, name))
    head = cfg.model.decode_head
    vocab = list(head.vocabulary)
    assert head.num_classes == len(vocab) == k
    ds = cfg.test_dataloader.dataset
    assert ds.type == dataset
    classes = list(ds.get('metainfo', {}).get('classes') or
                   getattr(dsets, dataset).METAINFO['classes'])
    assert len(classes) == k
    assert vocab == [readable(c) for c in classes]
    assert len({v.lower() for v in vocab}) == k
    assert cfg.model.test_cfg.mode == 'whole'  # MaskCLIP tests whole images
    assert head.ks_thresh == 0 and head.pd_thresh == 0  # the paper's numbers
    arch = 'RN50' if '_r50-' in name else 'ViT-B-16'
    assert cfg.model.backbone.arch == head.text_encoder.arch == arch
    # value features, and keys so that key smoothing is one option away
    assert tuple(cfg.model.backbone.joint_outputs) == ('value', 'keys')
    # the authors' refinements and scores (issue 21)
    assert head.refine_mode == 'authors'
    if arch == 'ViT-B-16':
        # the authors' mmseg ViT: exact GELU, LayerNorm eps 1e-6, plain
        # bicubic resize of the positional table
        bb = cfg.model.backbone
        assert bb.quick_gelu is False and bb.ln_eps == 1e-6
        assert bb.pos_antialias is False


def test_voc_without_background_labels(tmp_path):
    """Background (0) -> ignored, objects 1..20 -> 0..19, 255 stays 255; the
    metric averages over 20 classes."""
    from mmengine.registry import init_default_scope

    from clipdense.registry import DATASETS, METRICS
    init_default_scope('clipdense')
    root = tmp_path / 'VOC2012'
    for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        (root / d).mkdir(parents=True)
    cv2.imwrite(str(root / 'JPEGImages' / 'x.jpg'), np.zeros((8, 8, 3), np.uint8))
    label = np.array([[0, 1, 20, 255] * 2] * 8, np.uint8)
    cv2.imwrite(str(root / 'SegmentationClass' / 'x.png'), label)
    (root / 'ImageSets/Segmentation/val.txt').write_text('x\n')
    cfg = Config.fromfile(osp.join(MASKCLIP, 'maskclip_vit-b16-openai_voc12-20cls-512x512.py'))
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = str(root)
    ds = DATASETS.build(ds_cfg)
    assert len(ds.metainfo['classes']) == 20
    gt = ds[0]['data_samples'].gt_sem_seg.data[0].numpy()
    assert gt[0, :4].tolist() == [255, 0, 19, 255]
    # the 21-class config keeps background as class 0
    cfg21 = Config.fromfile(osp.join(MASKCLIP, 'maskclip_vit-b16-openai_voc12-512x512.py'))
    ds21_cfg = cfg21.test_dataloader.dataset
    ds21_cfg.data_root = str(root)
    gt21 = DATASETS.build(ds21_cfg)[0]['data_samples'].gt_sem_seg.data[0].numpy()
    assert gt21[0, :4].tolist() == [0, 1, 20, 255]
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = ds.metainfo
    assert len(metric.dataset_meta['classes']) == 20
