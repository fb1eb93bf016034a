# RetinaNet shrunk for the synthetic world (128 px, 10 classes) on the tiny
# CLIP ResNet "clipdense-synth-rn" (C3..C5 = 128/256/512 channels): 32-channel
# FPN (P3-P7) and head with 2 stacked convs. The CLIP baseline.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', './clip_data_preprocessor.py'
]
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
num_classes = 10
model = dict(
    data_preprocessor={{_base_.clip_data_preprocessor}},
    backbone=dict(
        _delete_=True,
        type='clipdense.OpenCLIPResNet',
        arch='clipdense-synth-rn',
        pretrained=clip_weights,
        out_indices=(0, 1, 2, 3),
        norm_eval=True),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
    bbox_head=dict(num_classes=num_classes, in_channels=32, feat_channels=32,
                   stacked_convs=2),
    test_cfg=dict(nms_pre=300, score_thr=0.01, max_per_img=20))
