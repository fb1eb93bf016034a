# CLIP RN50 Mask R-CNN baseline, COCO 1x (paper: 39.3 box / 36.8 mask AP).
_base_ = [
    './_base_/clip_mask-rcnn_rn50.py', 'mmdet::_base_/datasets/coco_instance.py',
    './_base_/coco_1x_adamw.py', '../_base_/default_runtime_det.py'
]
optim_wrapper = dict(optimizer=dict(lr=2e-4))
