# VLTSeg in miniature on the synthetic world with the proxy CLIP ViT
# (`make proxy-clip`: clipdense-synth-vit8, width 96, 4 blocks, patch 8,
# 16x16 tokens at 128 px; results/proxy_clip.md) fully fine-tuned under the
# small Mask2Former head on the source style "flat", then tested on every
# style with tools/analysis_tools/dg_benchmark.py (issue #25: the headline
# ablation "CLIP init > random init under style shift" rerun on the proxy).
# Recipe, head, data and schedule are the tiny-CLIP config's
# (vltseg_clip-synth-rn_1xb4-300_*); the ViT parts are the authors' ViT
# configs' (vltseg_vit-b16-openai_*: taps after blocks turned into the
# simple 4-level pyramid; here every block of the 4, strides 2, 4, 8, 16 for
# patch 8, plain BN in the x4 branch as one process runs).
# Baseline: vltseg_synth-vit8-scratch_1xb4-150_synthetic-flat-128x128.py;
# results/vltseg_proxy.md (tools/analysis_tools/bench_vltseg.py --clip proxy).
_base_ = ['./vltseg_clip-synth-rn_1xb4-300_synthetic-flat-128x128.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='OpenCLIPViT',
        arch='clipdense-synth-vit8',
        pretrained='work_dirs/proxy/proxy_clip.pt',
        out_indices=(0, 1, 2, 3),
        pyramid=True,
        norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=[96, 96, 96, 96]))
# Schedule: the tiny-CLIP recipe's shape (constant for the first tenth, then
# poly) over 150 iterations, the length the CPU budget of the proxy benchmark
# allows (chosen from the measured seconds per iteration, before any result).
max_iters = 150
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=15, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters))
