# The "CLIP + FPN" baseline on the synthetic world with the proxy CLIP ViT:
# Semantic FPN on the image tower's 4-level pyramid, the same schedule and
# heads as denseclip_clip-synth-vit8_1xb8-120_* (no text, no score map). The
# ViT parts as the authors' baseline (clipfpn_vit-b16.py): GroupNorm at each
# pyramid branch, the positional table resized once and trained, the class
# embedding added twice, no drop path.
#   python tools/train.py configs/denseclip/clipfpn_clip-synth-vit8_1xb8-120_synthetic-flat-128x128.py
_base_ = ['./clipfpn_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py']
clip_arch = 'clipdense-synth-vit8'
clip_weights = 'work_dirs/proxy/proxy_clip.pt'
model = dict(
    backbone=dict(
        _delete_=True,
        type='OpenCLIPViT',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(0, 1, 2, 3),
        pyramid=True,
        norm_cfg={{_base_.norm_cfg}},
        pyramid_norm='group',
        pos_embed_mode='bilinear-once-trainable',
        pos_embed_size=128,
        class_embed_twice=True),
    neck=dict(in_channels=[96, 96, 96, 96]))
# Schedule: the same as denseclip_clip-synth-vit8_1xb8-120_* (120 iterations,
# warm-up 15, then poly).
max_iters = 120
warmup_iters = 15
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False,
         begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters))
