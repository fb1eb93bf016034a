# VLTSeg, GTA5 -> {Cityscapes, BDD100K, Mapillary}: CLIP ViT-B/16 (OpenAI)
# fully fine-tuned under Mask2Former; 5k iterations, batch 16 (2 GPUs x 8),
# 512x512 crops.
_base_ = [
    '../_base_/models/vltseg_mask2former_vit.py',
    '../_base_/datasets/dg_gta5_512x512.py',
    '../_base_/default_runtime.py', '../_base_/schedules/vltseg_adamw.py'
]
model = dict(
    backbone=dict(
        arch='ViT-B-16', pretrained='openai', out_indices=[3, 5, 7, 11]),
    decode_head=dict(in_channels=[768, 768, 768, 768]))
