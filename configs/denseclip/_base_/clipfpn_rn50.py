# The DenseCLIP paper's "CLIP + FPN" baseline: Semantic FPN on the CLIP
# ResNet-50 image tower (no text, no attention pool), DenseCLIP's
# `fpn_clipres50` configs.
# SyncBN as the authors: MMEngine converts every BN when distributed
# (`sync_bn`); one process keeps plain BN.
sync_bn = 'torch'
norm_cfg = dict(type='BN', requires_grad=True)
# CLIP's mean/std (x 255), RGB; the crop size is set by the leaf config
# CLIP's mean/std
_base_ = ['../../_base_/clip_data_preprocessor.py']
num_classes = 150
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    type='EncoderDecoder',
    backbone=dict(
        type='OpenCLIPResNet',
        arch='RN50',
        pretrained='openai',
        out_indices=(0, 1, 2, 3)),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=256,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
