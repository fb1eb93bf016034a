# The "CLIP + FPN" baseline on the synthetic world: Semantic FPN on the tiny
# CLIP ResNet, the same schedule and heads as the DenseCLIP synthetic
# configs (no text, no score map).
_base_ = ['./denseclip_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py']
model = dict(
    _delete_=True,
    type='EncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='OpenCLIPResNet',
        arch='clipdense-synth-rn',
        pretrained={{_base_.clip_weights}},
        out_indices=(0, 1, 2, 3)),
    neck=dict(
        type='FPN', in_channels=[64, 128, 256, 512], out_channels=64,
        num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[64, 64, 64, 64],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=64,
        dropout_ratio=0.1,
        num_classes=13,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
