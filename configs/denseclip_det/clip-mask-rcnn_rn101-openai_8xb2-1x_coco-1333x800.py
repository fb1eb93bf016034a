# CLIP RN101 Mask R-CNN baseline, COCO 1x (paper: 42.2 box / 38.9 mask AP).
_base_ = [
    './_base_/clip_mask-rcnn_rn50.py', 'mmdet::_base_/datasets/coco_instance.py',
    './_base_/coco_1x_adamw.py', '../_base_/default_runtime_det.py'
]
model = dict(backbone=dict(arch='RN101'))
optim_wrapper = dict(optimizer=dict(lr=2e-4))
