# DenseCLIP RetinaNet RN101, COCO 1x (paper: 41.1 box AP vs 40.5 for CLIP).
_base_ = [
    './_base_/denseclip_retinanet_rn50.py', 'mmdet::_base_/datasets/coco_detection.py',
    './_base_/coco_1x_adamw.py', '../_base_/default_runtime_det.py'
]
model = dict(
    backbone=dict(arch='RN101'),
    # the context decoder and gamma follow RN101's 512-d joint space
    text_encoder=dict(arch='RN101'))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
