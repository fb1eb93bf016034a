# VLTSeg, GTA5 -> {Cityscapes, BDD100K, Mapillary}: CLIP ViT-L/14 (OpenAI)
# fully fine-tuned under Mask2Former; 5k iterations, batch 16 (2 GPUs x 8),
# 512x512 crops. Patch 14: crops are padded to 518 (37 patches) and test
# images to multiples of 14 so that tokens tile the image exactly (the
# pyramid's strides are 3.5/7/14/28); slide windows of 518, stride 426.
_base_ = [
    '../_base_/models/vltseg_mask2former_vit.py',
    '../_base_/datasets/dg_gta5_512x512.py',
    '../_base_/default_runtime.py', '../_base_/schedules/vltseg_adamw.py'
]
model = dict(
    data_preprocessor=dict(size=(518, 518), test_cfg=dict(size_divisor=14)),
    backbone=dict(
        arch='ViT-L-14', pretrained='openai', out_indices=[9, 14, 19, 23]),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024]),
    test_cfg=dict(mode='slide', crop_size=(518, 518), stride=(426, 426)))
