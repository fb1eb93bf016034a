# VLTSeg, Cityscapes -> {BDD100K, Mapillary, ACDC}: EVA02-CLIP-L/14 (merged2b_s4b_b131k)
# fully fine-tuned under Mask2Former;
# 20k iterations, batch 8 (2 GPUs x 4), 1024x1024 crops; slide test
# with windows of 1036 (74 patches of 14; crops padded from 1024 to 1036),
# stride 683 (ours: the reimplementation's is not documented).
_base_ = [
    '../_base_/models/vltseg_mask2former_vit.py',
    '../_base_/datasets/dg_cityscapes_1024x1024.py',
    '../_base_/default_runtime.py', '../_base_/schedules/vltseg_adamw.py'
]
max_iters = 20000
model = dict(
    data_preprocessor=dict(size=(1036, 1036), test_cfg=dict(size_divisor=14)),
    backbone=dict(
        arch='EVA02-L-14',
        pretrained='merged2b_s4b_b131k',
        out_indices=[9, 14, 19, 23],
        drop_path_rate=0.2),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024]),
    test_cfg=dict(mode='slide', crop_size=(1036, 1036), stride=(683, 683)))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=500, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=2000))
