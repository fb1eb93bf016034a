# DenseCLIP (post-model prompting) with a CLIP ViT-B/16 and Semantic FPN
# (DenseCLIP's `denseclip_fpn_vit-b_640x640_80k.py`): taps after blocks
# 3, 5, 7, 11 turned into a 4-level pyramid (strides 4, 8, 16, 32); the
# score map (stride 16) is concatenated to level 2 (768 + K channels).
# As the authors' ViT (configs/denseclip/README.md): GroupNorm(1, C) at the
# start of each pyramid branch, drop path 0.1, positional table resized once
# (bilinear) to 640/16 = 40x40 and trained, the class embedding added twice
# (their quirk, which their released checkpoint was trained with).
# SyncBN as the authors (their train script converts the backbone, their
# heads use SyncBN): MMEngine converts every BN when the run is distributed
# (`sync_bn`); one process keeps plain BN, so this config also runs there.
sync_bn = 'torch'
norm_cfg = dict(type='BN', requires_grad=True)
# CLIP's mean/std (x 255), RGB; the crop size is set by the leaf config
# CLIP's mean/std
_base_ = ['../../_base_/clip_data_preprocessor.py']
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    type='DenseCLIPSegmentor',
    backbone=dict(
        type='OpenCLIPViT',
        arch='ViT-B-16',
        pretrained='openai',
        out_indices=(3, 5, 7, 11),
        pyramid=True,
        norm_cfg=norm_cfg,
        joint_outputs=('global', 'dense'),
        pyramid_norm='group',
        drop_path_rate=0.1,
        pos_embed_mode='bilinear-once-trainable',
        pos_embed_size=640,
        class_embed_twice=True),
    text_encoder=dict(
        type='OpenCLIPContextTextEncoder',
        arch='ViT-B-16',
        pretrained='openai',
        class_context_length=5,
        freeze=True),
    context_decoder=dict(
        type='ContextDecoder', width=256, num_heads=4, num_layers=3,
        dropout=0.1, attn_impl='denseclip'),
    prompting='post',
    num_contexts=8,
    context_init_std=1.0,
    score_concat_index=2,  # the stride-16 level (768 + K channels)
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
    test_cfg=dict(mode='slide', crop_size=(640, 640), stride=(426, 426)))
