# KITTI-STEP (ReCo protocol): the 19 Cityscapes train classes of the
# panoptic label maps (semantic id = red channel, 255 void), val split, at
# the native resolution (about 1242x375; the authors run one image at a
# time, no resizing). Folder layout of deeplab2's KITTI-STEP instructions.
# Prepare with
#   python tools/dataset_converters/reco_benchmarks.py kitti_step data/kitti_step
# (writes panoptic_maps/<split>/<seq>/*_semantic.png next to the panoptic maps).
dataset_type = 'BaseSegDataset'
data_root = 'data/kitti_step'
classes = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
           'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
           'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
           'bicycle')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=dict(classes=classes),
        img_suffix='.png',
        seg_map_suffix='_semantic.png',
        data_prefix=dict(img_path='images/val', seg_map_path='panoptic_maps/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
