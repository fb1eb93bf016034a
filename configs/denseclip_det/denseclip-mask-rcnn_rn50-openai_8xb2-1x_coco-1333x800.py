# DenseCLIP Mask R-CNN RN50, COCO 1x (paper: 40.2 box / 37.6 mask AP vs 39.3 / 36.8 for CLIP).
_base_ = [
    './_base_/denseclip_mask-rcnn_rn50.py', 'mmdet::_base_/datasets/coco_instance.py',
    './_base_/coco_1x_adamw.py', '../_base_/default_runtime_det.py'
]
optim_wrapper = dict(optimizer=dict(lr=2e-4))
