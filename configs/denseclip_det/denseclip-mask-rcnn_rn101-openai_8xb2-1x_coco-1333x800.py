# DenseCLIP Mask R-CNN RN101, COCO 1x (paper: 42.6 box / 39.6 mask AP vs 42.2 / 38.9 for CLIP).
_base_ = [
    './_base_/denseclip_mask-rcnn_rn50.py', 'mmdet::_base_/datasets/coco_instance.py',
    './_base_/coco_1x_adamw.py', '../_base_/default_runtime_det.py'
]
model = dict(
    backbone=dict(arch='RN101'),
    # the context decoder and gamma follow RN101's 512-d joint space
    text_encoder=dict(arch='RN101'))
optim_wrapper = dict(optimizer=dict(lr=2e-4))
