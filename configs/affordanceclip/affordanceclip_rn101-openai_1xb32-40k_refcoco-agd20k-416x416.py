# AffordanceCLIP (Cuttano, Rosi, Trivigno, Averta, "What does CLIP know about
# peeling a banana?", CVPR 2024 Workshop MAR): frozen OpenAI CLIP RN101 image
# and text towers, a light text-conditioned FPN trained on RefCOCO with a
# pixel-text objective, tested zero-shot on AGD20K (KLD / SIM / NSS).
#
# Verified from the paper's abstract: frozen CLIP RN101, lightweight FPN over
# multi-level CLIP features, pixel-text objective on referring data, action
# prompts at test, AGD20K zero-shot. Everything else is a documented choice
# (configs/affordanceclip/README.md), each a config option:
#   levels C3-C5 + global embedding, FiLM text conditioning, 256-ch pyramid,
#   BCE + dice, 416 px letterbox, AdamW 1e-4, batch 32, 40k iterations,
#   the action templates of AFFORDANCE_TEMPLATES.
#   python tools/train.py configs/affordanceclip/affordanceclip_rn101-openai_1xb32-40k_refcoco-agd20k-416x416.py
#   python tools/test.py  <same config> work_dirs/.../iter_40000.pth
#       [--cfg-options test_dataloader.dataset.split=Unseen]
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/refcoco_agd20k.py'
]
clip_arch = 'RN101'
clip_weights = 'openai'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],  # CLIP's
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(416, 416),
    test_cfg=dict(size=(416, 416)))  # letterboxed test images are padded too
model = dict(
    type='AffordanceCLIP',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(1, 2, 3),  # C3-C5, strides 8/16/32
        joint_outputs=('global', ),  # add 'dense'/'value' for the CLIP baselines
        freeze='all'),
    text_encoder=dict(
        type='OpenCLIPTextEncoder', arch=clip_arch, pretrained=clip_weights),
    decode_head=dict(
        type='AffordanceHead',
        channels=256,
        fusion='film',  # or 'concat' (CRIS-style), 'none'
        use_global=True,
        text_proj=False,
        norm_cfg=dict(type='GN', num_groups=32),
        loss_bce_weight=1.0,
        loss_dice_weight=1.0),
    # prompt_templates: the default AFFORDANCE_TEMPLATES of
    # clipdense/models/segmentors/affordance_clip.py
    train_templates=None,  # referring expressions as written
    freeze_clip=True,
    test_cfg=dict(heatmap='head', threshold=0.5))

max_iters = 40000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-2),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=1000),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=1000,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000,
                    max_keep_ckpts=2))
