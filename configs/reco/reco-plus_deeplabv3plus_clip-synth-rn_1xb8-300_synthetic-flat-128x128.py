# ReCo+ on the synthetic world: a DeepLabv3+ trained on ReCo's pseudo-labels
# of the source style's *training* images (no ground-truth pixel labels are
# read in training). Make the pseudo-labels first:
#   python tools/dataset_converters/reco_pseudo_labels.py \
#       configs/reco/reco_clip-synth-rn_synthetic-128x128.py \
#       --img-dir data/synthetic/flat/img_dir/train \
#       --out-dir work_dirs/reco/pseudo_labels/synthetic-flat-train
# then train and test through the runner:
#   python tools/train.py configs/reco/reco-plus_deeplabv3plus_clip-synth-rn_1xb8-300_synthetic-flat-128x128.py
# Recipe of the paper (Adam 5e-4, backbone x0.1, weight decay 2e-4, poly
# 0.9, scale 0.5-2, crop, flip, photometric jitter, cross-entropy with 255
# ignored) at the world's scale. Deviations, for a CPU and no downloads: the
# backbone is the tiny CLIP ResNet (initialised from the tiny CLIP, as the
# paper's is from ImageNet) instead of ResNet-101, stride 32 (no dilation in
# CLIP's ResNet) with ASPP dilations (1, 2, 3), and 300 iterations (about 2 minutes of one CPU thread). The last
# checkpoint is used (the paper picked the best by validation mIoU, which
# reads ground truth).
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_seg.py'
]
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
pseudo_label_dir = 'work_dirs/reco/pseudo_labels/synthetic-flat-train'
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch='clipdense-synth-rn',
        pretrained=clip_weights,
        out_indices=(0, 3),  # C2 (64 ch, stride 4) for the decoder, C5 (512 ch)
        freeze='none'),
    decode_head=dict(
        type='DepthwiseSeparableASPPHead',
        in_channels=512,
        in_index=1,
        channels=64,
        dilations=(1, 2, 3),
        c1_in_channels=64,
        c1_channels=16,
        dropout_ratio=0.1,
        num_classes=13,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_root='',
        # images of the source style's training split; labels = ReCo's
        # pseudo-labels (mmseg layout + split file, see clipdense.apis.pseudo_labels)
        data_prefix=dict(img_path='data/synthetic/flat/img_dir/train',
                         seg_map_path=pseudo_label_dir),
        ann_file=pseudo_label_dir + '/split.txt',
        pipeline=train_pipeline))

iters = 300
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=5e-4, betas=(0.9, 0.999), weight_decay=2e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=iters, max_keep_ckpts=1))
