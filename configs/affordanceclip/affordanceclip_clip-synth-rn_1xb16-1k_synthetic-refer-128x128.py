# AffordanceCLIP at toy scale on the synthetic world, with the world's tiny
# CLIP ResNet ("clipdense-synth-rn", `make quickstart` writes it to
# work_dirs/quickstart/tiny_clip.pt; the same file feeds both towers).
# Trained on the world's referring expressions only (objects and parts, e.g.
# "the handle of the red mug"; no action word, no affordance label), tested
# zero-shot on its AGD20K-style Seen tree with action prompts ("hold",
# "drink with", ...). `tools/analysis_tools/bench_affordance.py` runs it and
# compares with the untrained frozen-CLIP similarity maps
# (--cfg-options model.test_cfg.heatmap=clip_dense / clip_value).
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_refer_agd.py'
]
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],  # the tiny CLIP was trained with CLIP's
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(128, 128))
model = dict(
    type='AffordanceCLIP',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch='clipdense-synth-rn',
        pretrained=clip_weights,
        out_indices=(1, 2, 3),  # C3-C5 (strides 8/16/32), as the paper configs
        joint_outputs=('global', 'dense', 'value'),
        freeze='all'),
    text_encoder=dict(
        type='OpenCLIPTextEncoder', arch='clipdense-synth-rn',
        pretrained=clip_weights),
    decode_head=dict(
        type='AffordanceHead',
        channels=64,
        fusion='film',
        use_global=True,
        text_proj=False,
        norm_cfg=dict(type='GN', num_groups=8),
        loss_bce_weight=1.0,
        loss_dice_weight=1.0),
    train_templates=None,
    freeze_clip=True,
    # the world has 400 fixed training images and no augmentation: keep the
    # frozen tower's outputs (exact; see AffordanceCLIP.extract_feat)
    feature_cache_size=1024,
    test_cfg=dict(heatmap='head', threshold=0.5))

max_iters = 1000  # batch 16: about 2.7 epochs of the 5.8k training expressions
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-2),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=0.9, eta_min=1e-5, by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
randomness = dict(seed=0)
