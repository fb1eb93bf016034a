# DenseCLIP Mask R-CNN, RN50 (the authors' mask_rcnn_denseclip_r50_fpn):
# the pixel-text score map / tau (80 COCO classes) is concatenated to C5
# (FPN in_channels [256, 512, 1024, 2048 + 80]); learnable contexts
# (8 + 5 tokens), context decoder (256 wide, 4 heads, 3 layers, dropout
# 0.1), per-channel gamma 1e-4, auxiliary segmentation loss on. See
# denseclip_retinanet_rn50.py for the authors' `input_resolution=1344`.
# Paper recipe = the authors' code; configs/denseclip_det/README.md lists
# the differences and their switches. SyncBN as the authors' train.py (the
# backbone converted): MMEngine converts every BN when distributed.
sync_bn = 'torch'
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', './clip_data_preprocessor.py',
    './coco_classes.py'
]
model = dict(
    type='clipdense.DenseCLIPMaskRCNN',
    data_preprocessor={{_base_.clip_data_preprocessor}},
    backbone=dict(
        _delete_=True,
        type='clipdense.OpenCLIPResNet',
        arch='RN50',
        pretrained='openai',
        out_indices=(0, 1, 2, 3),
        joint_outputs=('global', 'dense'),
        # the authors' table: CLIP's 7x7 resized once (bilinear) to
        # 1344/32 = 42x42, trained, cropped to [:h, :w] per forward
        pos_embed_mode='bilinear-once-crop',
        pos_embed_size=1344),
    text_encoder=dict(
        type='clipdense.OpenCLIPContextTextEncoder',
        arch='RN50',
        pretrained='openai',
        class_context_length=5),
    context_decoder=dict(
        type='clipdense.ContextDecoder',
        width=256,
        num_heads=4,
        num_layers=3,
        dropout=0.1,
        attn_impl='denseclip'),
    vocabulary={{_base_.coco_classes}},
    num_contexts=8,
    context_init_std=1.0,
    tau=0.07,
    seg_loss=True,
    seg_target_rounding='truncate',
    neck=dict(in_channels=[256, 512, 1024, 2048 + 80]))
