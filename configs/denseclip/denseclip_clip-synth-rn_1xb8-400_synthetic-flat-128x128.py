# DenseCLIP (post-model prompting) at toy scale on the synthetic world: the
# world's tiny CLIP ResNet ("clipdense-synth-rn", 128 px, joint space 128;
# `make quickstart` trains it to work_dirs/quickstart/tiny_clip.pt, which
# feeds both towers), trained on the source style "flat" only. The 13 class
# names of the world are the vocabulary. The schedule is shared with
# denseclip-pre_* and clipfpn_* of the same name (the comparison in
# results/denseclip_synthetic.md, tools/analysis_tools/bench_denseclip.py):
#   python tools/train.py configs/denseclip/denseclip_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_seg.py'
]
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],  # CLIP's mean/std (the tiny CLIP's)
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='DenseCLIPSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch='clipdense-synth-rn',
        pretrained=clip_weights,
        out_indices=(0, 1, 2, 3),
        joint_outputs=('global', 'dense')),
    text_encoder=dict(
        type='OpenCLIPContextTextEncoder',
        arch='clipdense-synth-rn',
        pretrained=clip_weights,
        class_context_length=5,
        freeze=True),
    context_decoder=dict(
        type='ContextDecoder', width=64, num_heads=4, num_layers=3,
        dropout=0.1),
    classes_from='SyntheticSegDataset',
    prompting='post',
    num_contexts=8,
    score_concat_index=3,  # C5: 512 + 13 channels
    tau=0.07,
    gamma_init=1e-4,
    neck=dict(type='FPN', out_channels=64, num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[64, 64, 64, 64],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=64,
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
    test_cfg=dict(mode='whole'))

# the quickstart FPN's recipe (AdamW 1e-3 suits the tiny towers) with
# DenseCLIP's parameter groups: backbone 0.1x, text encoder 0x, no decay on
# norms; linear warm-up, then poly
max_iters = 400
warmup_iters = 50
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'text_encoder': dict(lr_mult=0.0),
            'norm': dict(decay_mult=0.0),
        },
        norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False,
         begin=warmup_iters, end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
randomness = dict(seed=0)
