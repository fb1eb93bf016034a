# OVSeg training (Liang et al., CVPR 2023): the MaskFormer proposal model on
# COCO-Stuff-171 (mmseg's COCOStuffDataset, 164k version: data/coco_stuff164k,
# converted with mmseg's tools/dataset_converters/coco_stuff164k.py), batch 32
# (8 GPUs x 4), 120k iterations, crop 640, multi-scale (short side 320-1280),
# photometric distortion, AdamW lr 6e-5 wd 0.01, poly, 1500 warm-up
# iterations, gradient clip 0.01 (the paper's Swin-B recipe). CLIP's image
# tower is not used in training (only the text embeddings of the 171 names).
# Evaluation: the ovseg_*_{ade150,ade847,pc59,pc459,voc20}-*.py configs
# (zero-shot, the evaluated dataset's names as vocabulary).
#   tools/dist_train.sh configs/ovseg/ovseg_swin-b_vit-l14-openai_8xb4-120k_coco-stuff171-640x640.py 8
_base_ = [
    '../_base_/models/ovseg_swin-b_vit-l14-openai.py',
    '../_base_/default_runtime.py'
]
crop_size = (640, 640)
# COCO-Stuff-171 names in label order, as the authors prompt with them: the
# raw COCO-Stuff training names of their detectron2 registration
# ("wall-other", "floor-wood"; clipdense/datasets/resources/ovseg_names/
# coco_stuff171.txt). A comma in a name is part of the one prompt string for
# the authors (text_encoder.split_synonyms=False in the model base config).
coco_stuff_names = [
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck',
    'boat', 'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench',
    'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra',
    'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
    'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife',
    'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
    'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard',
    'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
    'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush', 'banner',
    'blanket', 'branch', 'bridge', 'building-other', 'bush', 'cabinet', 'cage',
    'cardboard', 'carpet', 'ceiling-other', 'ceiling-tile', 'cloth', 'clothes',
    'clouds', 'counter', 'cupboard', 'curtain', 'desk-stuff', 'dirt', 'door-stuff',
    'fence', 'floor-marble', 'floor-other', 'floor-stone', 'floor-tile', 'floor-wood',
    'flower', 'fog', 'food-other', 'fruit', 'furniture-other', 'grass', 'gravel',
    'ground-other', 'hill', 'house', 'leaves', 'light', 'mat', 'metal', 'mirror-stuff',
    'moss', 'mountain', 'mud', 'napkin', 'net', 'paper', 'pavement', 'pillow',
    'plant-other', 'plastic', 'platform', 'playingfield', 'railing', 'railroad',
    'river', 'road', 'rock', 'roof', 'rug', 'salad', 'sand', 'sea', 'shelf',
    'sky-other', 'skyscraper', 'snow', 'solid-other', 'stairs', 'stone', 'straw',
    'structural-other', 'table', 'tent', 'textile-other', 'towel', 'tree', 'vegetable',
    'wall-brick', 'wall-concrete', 'wall-other', 'wall-panel', 'wall-stone',
    'wall-tile', 'wall-wood', 'water-other', 'waterdrops', 'window-blind',
    'window-other', 'wood'
]
model = dict(decode_head=dict(train_vocabulary=coco_stuff_names))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomChoiceResize',
         scales=[int(640 * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=2560),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='COCOStuffDataset',
        data_root='data/coco_stuff164k',
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='COCOStuffDataset',
        data_root='data/coco_stuff164k',
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
custom_hooks = [dict(type='DatasetVocabularyHook', vocabulary=coco_stuff_names)]

max_iters = 120000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, weight_decay=0.01, eps=1e-8,
                   betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=1.0),
            'norm': dict(decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0),
            'null_embed': dict(decay_mult=0.0),
            'absolute_pos_embed': dict(decay_mult=0.0),
            'relative_position_bias_table': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=0.01, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0, power=0.9, begin=1500, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000,
                    max_keep_ckpts=3))
