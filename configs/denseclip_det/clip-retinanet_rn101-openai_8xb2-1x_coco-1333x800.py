# CLIP RN101 RetinaNet baseline, COCO 1x (paper: 40.5 box AP).
_base_ = [
    './_base_/clip_retinanet_rn50.py', 'mmdet::_base_/datasets/coco_detection.py',
    './_base_/coco_1x_adamw.py', '../_base_/default_runtime_det.py'
]
model = dict(backbone=dict(arch='RN101'))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
