# RetinaNet for the synthetic world (128 px, 10 classes) on the proxy CLIP ViT
# "clipdense-synth-vit8" (`make proxy-clip`; width 96, 4 blocks, patch 8: a
# 16x16 token grid at 128 px). The CLIP baseline; clipdense's extension, the
# DenseCLIP authors ran detection with ResNets only.
# The 4 blocks are tapped and turned into a pyramid (OpenCLIPViT's simple
# feature pyramid, strides 2/4/8/16, GroupNorm at the start of every branch as
# DenseCLIP's ViT). The FPN starts at the stride-8 level (start_level=2) and
# adds 3 extra convs, so the head sees P3-P7 (strides 8-128) with the anchors
# of the ResNet config (tiny_retinanet_clip-synth-rn.py); FPN and head are
# the same 32-channel ones.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', './clip_data_preprocessor.py'
]
clip_arch = 'clipdense-synth-vit8'
clip_weights = 'work_dirs/proxy/proxy_clip.pt'
num_classes = 10
model = dict(
    data_preprocessor={{_base_.clip_data_preprocessor}},
    backbone=dict(
        _delete_=True,
        type='clipdense.OpenCLIPViT',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(0, 1, 2, 3),
        pyramid=True,
        pyramid_norm='group'),
    neck=dict(in_channels=[96, 96, 96, 96], out_channels=32, start_level=2,
              add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(num_classes=num_classes, in_channels=32, feat_channels=32,
                   stacked_convs=2),
    test_cfg=dict(nms_pre=300, score_thr=0.01, max_per_img=20))
