# VLTSeg's main model, GTA5 -> {Cityscapes, BDD100K, Mapillary}:
# EVA02-CLIP-L/14 (open_clip 'EVA02-L-14', 'merged2b_s4b_b131k', the
# EVA02_CLIP_L_psz14_s4B weights) fully fine-tuned under Mask2Former, taps
# after blocks 9/14/19/23, drop-path 0.2; 5k iterations, batch 16
# (2 GPUs x 8), 512x512 crops padded to 518 (see the ViT-L/14 config).
_base_ = [
    '../_base_/models/vltseg_mask2former_vit.py',
    '../_base_/datasets/dg_gta5_512x512.py',
    '../_base_/default_runtime.py', '../_base_/schedules/vltseg_adamw.py'
]
model = dict(
    data_preprocessor=dict(size=(518, 518), test_cfg=dict(size_divisor=14)),
    backbone=dict(
        arch='EVA02-L-14',
        pretrained='merged2b_s4b_b131k',
        out_indices=[9, 14, 19, 23],
        drop_path_rate=0.2),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024]),
    test_cfg=dict(mode='slide', crop_size=(518, 518), stride=(426, 426)))
