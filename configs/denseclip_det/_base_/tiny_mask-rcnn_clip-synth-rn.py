# Mask R-CNN shrunk for the synthetic world (128 px, 10 classes) on the
# tiny CLIP ResNet "clipdense-synth-rn" (C2..C5 = 64/128/256/512 channels,
# joint space 128): 32-channel FPN, 128-d box FCs, 2-conv mask head, fewer
# anchors/proposals/RoIs, score threshold 0.01 (scores stay low after a
# few minutes of training). The CLIP baseline (no score map).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', './clip_data_preprocessor.py'
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
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=32, num_outs=5),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=128,
                       num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(num_convs=2, in_channels=32, conv_out_channels=32,
                       num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(score_thr=0.01, max_per_img=20)))  # short training: low scores
