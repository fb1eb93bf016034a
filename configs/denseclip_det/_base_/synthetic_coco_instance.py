# The synthetic world's instances (COCO json, 10 thing classes, 128 px):
# train on the source style "flat", evaluate on its val split with mmdet's
# CocoMetric (bbox and segm). Generate the world with `make quickstart` or
# `python tools/dataset_converters/generate_synthetic_world.py --out data/synthetic`.
dataset_type = 'clipdense.SyntheticCocoDataset'
data_root = 'data/synthetic/'
style = 'flat'
img_scale = (128, 128)
synthetic_classes = ('ball', 'cup', 'bottle', 'knife', 'hammer', 'key', 'mug',
                     'spoon', 'racket', 'scissors')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=style + '/annotations/instances_train.json',
        data_prefix=dict(img=style + '/img_dir/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=style + '/annotations/instances_val.json',
        data_prefix=dict(img=style + '/img_dir/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + style + '/annotations/instances_val.json',
    metric=['bbox', 'segm'],
    format_only=False)
test_evaluator = val_evaluator
