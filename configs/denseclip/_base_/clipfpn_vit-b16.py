# The DenseCLIP paper's "CLIP + FPN" baseline with a CLIP ViT-B/16: the
# same pyramid as denseclip_vit-b16.py, no text. As the authors'
# fpn_clipvit-b: GroupNorm at each pyramid branch, table resized once to
# 40x40 and trained, class embedding added twice; no drop path (their
# baseline config sets none).
# SyncBN as the authors: MMEngine converts every BN when distributed
# (`sync_bn`); one process keeps plain BN.
sync_bn = 'torch'
norm_cfg = dict(type='BN', requires_grad=True)
num_classes = 150
# CLIP's mean/std (x 255), RGB; the crop size is set by the leaf config
# CLIP's mean/std
_base_ = ['../../_base_/clip_data_preprocessor.py']
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    type='EncoderDecoder',
    backbone=dict(
        type='OpenCLIPViT',
        arch='ViT-B-16',
        pretrained='openai',
        out_indices=(3, 5, 7, 11),
        pyramid=True,
        norm_cfg=norm_cfg,
        pyramid_norm='group',
        pos_embed_mode='bilinear-once-trainable',
        pos_embed_size=640,
        class_embed_twice=True),
    neck=dict(
        type='FPN',
        in_channels=[768, 768, 768, 768],
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
    test_cfg=dict(mode='slide', crop_size=(640, 640), stride=(426, 426)))
