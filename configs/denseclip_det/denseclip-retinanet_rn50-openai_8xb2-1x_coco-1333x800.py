# DenseCLIP RetinaNet RN50, COCO 1x (paper: 37.8 box AP vs 36.9 for CLIP).
_base_ = [
    './_base_/denseclip_retinanet_rn50.py', 'mmdet::_base_/datasets/coco_detection.py',
    './_base_/coco_1x_adamw.py', '../_base_/default_runtime_det.py'
]
optim_wrapper = dict(optimizer=dict(lr=1e-4))
