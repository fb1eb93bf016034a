# DenseCLIP (post-model prompting) with a CLIP ResNet-50 and Semantic FPN
# (DenseCLIP's `_base_/models/denseclip_r50.py`). The vocabulary (and so
# num_classes, the FPN's C5 input channels and the heads' outputs) follows
# `classes_from` / `vocabulary`, set by the leaf config.
# SyncBN as the authors (their train script converts the backbone, their
# heads use SyncBN): MMEngine converts every BN when the run is distributed
# (`sync_bn`); one process keeps plain BN, so this config also runs there.
sync_bn = 'torch'
# Paper recipe = the authors' code (configs/denseclip/README.md lists the
# switches): contexts trunc-normal std 1.0, the attention pool's table
# resized once (bilinear) to 512/32 = 16x16 and trained, the authors'
# context-decoder attention.
norm_cfg = dict(type='BN', requires_grad=True)
# CLIP's mean/std (x 255), RGB; the crop size is set by the leaf config
# CLIP's mean/std
_base_ = ['../../_base_/clip_data_preprocessor.py']
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    type='DenseCLIPSegmentor',
    backbone=dict(
        type='OpenCLIPResNet',
        arch='RN50',
        pretrained='openai',
        out_indices=(0, 1, 2, 3),
        joint_outputs=('global', 'dense'),
        pos_embed_mode='bilinear-once-trainable',
        pos_embed_size=512),
    text_encoder=dict(
        type='OpenCLIPContextTextEncoder',
        arch='RN50',
        pretrained='openai',
        class_context_length=5,  # [SOT] name [EOT], 8 contexts before it
        freeze=True),
    context_decoder=dict(
        type='ContextDecoder', width=256, num_heads=4, num_layers=3,
        dropout=0.1, attn_impl='denseclip'),
    prompting='post',
    num_contexts=8,
    context_init_std=1.0,
    score_concat_index=3,  # C5 (2048 + K channels)
    tau=0.07,
    gamma_init=1e-4,
    neck=dict(type='FPN', out_channels=256, num_outs=4),  # in_channels: filled
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=256,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    identity_head=dict(
        type='PixelTextIdentityHead',
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
