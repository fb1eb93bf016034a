# ReCo+ (paper Sec. 3.4; authors' networks/reco_plus.py): DeepLabv3+ with an
# ImageNet ResNet-101 at output stride 8, trained with pixel-wise
# cross-entropy on ReCo's pseudo-labels of the target's training images
# (255 ignored): Adam lr 5e-4 (backbone x0.1), weight decay 2e-4, betas
# (0.9, 0.999), poly (0.9), 20k iterations of batch 8, shorter side 320 +
# centre crop 320, random scale 0.5-2.0, random crop 320, flip, photometric
# jitter; BN momentum 0.01. The authors use VainF's DeepLabv3+ with a
# torchvision ResNet-101; this is mmseg's (ResNetV1c-101, the closest
# ImageNet-initialised equivalent), no auxiliary head.
_base_ = ['mmseg::_base_/models/deeplabv3plus_r50-d8.py']
crop_size = (320, 320)
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101, norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=None)
iters = 20000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=5e-4, betas=(0.9, 0.999), weight_decay=2e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000))
reco_plus_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # the authors: torchvision resize (bilinear image, nearest labels) and
    # centre crop; the pseudo-labels are in the image's frame (ignore, 255,
    # outside the crop ReCo labelled)
    dict(type='CenterCropFrame', scale=320, crop_size=320, interpolation='bilinear',
         crop_frame=False),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
