# DenseCLIP (post-model prompting) on the synthetic world with the proxy CLIP
# ViT (`make proxy-clip`: clipdense-synth-vit8, width 96, 4 blocks, patch 8,
# 16x16 tokens at 128 px, joint space 128; results/proxy_clip.md) for both
# towers, trained on the source style "flat" only (issue #25, the headline
# ablation DenseCLIP > CLIP + FPN rerun on a proxy with a finer grid).
# The recipe (data, heads, context decoder, schedule, parameter groups) is
# the tiny-CLIP config's (denseclip_clip-synth-rn_1xb8-400_*); the ViT parts
# are the authors' ViT config's (denseclip_vit-b16.py): taps after every
# block (the proxy has 4) turned into a 4-level pyramid with GroupNorm at
# each branch (strides 2, 4, 8, 16 for patch 8), drop path 0.1, the
# positional table resized once (bilinear) to the crop's grid and trained,
# the class embedding added twice, and the score map concatenated to the
# level at the token grid's stride (index 2, 96 + 13 channels).
# Shares its schedule with clipfpn_clip-synth-vit8_1xb8-120_* (the baseline);
# results/denseclip_proxy.md (tools/analysis_tools/bench_denseclip.py --clip proxy):
#   python tools/train.py configs/denseclip/denseclip_clip-synth-vit8_1xb8-120_synthetic-flat-128x128.py
_base_ = ['./denseclip_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py']
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
        joint_outputs=('global', 'dense'),
        pyramid_norm='group',
        drop_path_rate=0.1,
        pos_embed_mode='bilinear-once-trainable',
        pos_embed_size=128,
        class_embed_twice=True),
    text_encoder=dict(arch=clip_arch, pretrained=clip_weights),
    score_concat_index=2)
# Schedule: the tiny-CLIP recipe's shape (linear warm-up for 1/8 of the run,
# then poly) over 120 iterations (~5 epochs of the 200 source images), the
# length the CPU budget of the proxy benchmark allows (chosen from the
# measured seconds per iteration, before any result).
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
