# VLTSeg, Cityscapes -> {BDD100K, Mapillary, ACDC}: CLIP ViT-B/16 (OpenAI)
# fully fine-tuned under Mask2Former;
# 20k iterations, batch 8 (2 GPUs x 4), 1024x1024 crops; slide test
# with 1024 windows (stride 683, ours: the reimplementation's is not
# documented).
_base_ = [
    '../_base_/models/vltseg_mask2former_vit.py',
    '../_base_/datasets/dg_cityscapes_1024x1024.py',
    '../_base_/default_runtime.py', '../_base_/schedules/vltseg_adamw.py'
]
max_iters = 20000
model = dict(
    data_preprocessor=dict(size=(1024, 1024)),
    backbone=dict(
        arch='ViT-B-16', pretrained='openai', out_indices=[3, 5, 7, 11]),
    decode_head=dict(in_channels=[768, 768, 768, 768]),
    test_cfg=dict(mode='slide', crop_size=(1024, 1024), stride=(683, 683)))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=500, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=2000))
