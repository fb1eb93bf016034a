# The "CLIP" baseline of DenseCLIP's detection table: mmdet's RetinaNet with
# CLIP's RN50 image tower (stage maps only) as the backbone.
# SyncBN as the authors' train.py (backbone converted): MMEngine converts
# every BN when the run is distributed; one process keeps BN.
sync_bn = 'torch'
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', './clip_data_preprocessor.py'
]
model = dict(
    data_preprocessor={{_base_.clip_data_preprocessor}},
    backbone=dict(
        _delete_=True,
        type='clipdense.OpenCLIPResNet',
        arch='RN50',
        pretrained='openai',
        out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
