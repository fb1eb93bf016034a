# MaskCLIP ViT-B/16 (OpenAI CLIP), annotation-free, on PASCAL VOC 2012 without
# background (20 classes): the paper's setting (Zhou et al., ECCV 2022;
# reported 49.5 mIoU on VOC-aug w/o bg). 85 prompt templates, whole-image
# test, ImageNet mean/std as MaskCLIP's configs; no key smoothing or prompt
# denoising (set ks_thresh=1.0 / pd_thresh=0.5 to try them).
# Pixels labelled background in VOC must be ignored for the "w/o bg" numbers
# (MaskCLIP used a reduced-label dataset); see README.md.
_base_ = [
    'mmseg::_base_/datasets/pascal_voc12.py', '../_base_/default_runtime.py'
]
default_scope = 'clipdense'
vocabulary = [
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'table', 'dog', 'horse', 'motorbike', 'person',
    'potted plant', 'sheep', 'sofa', 'train', 'tv monitor'
]
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # ImageNet's, as MaskCLIP
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPViT',
        arch='ViT-B-16',
        pretrained='openai',
        out_indices=(-1, ),
        pyramid=False,
        joint_outputs=('value', 'keys'),
        freeze='all'),
    decode_head=dict(
        type='MaskCLIPHead',
        text_encoder=dict(
            type='OpenCLIPTextEncoder',
            arch='ViT-B-16',
            pretrained='openai',
            templates='maskclip'),
        vocabulary=vocabulary,
        num_classes=len(vocabulary),
        logit_scale=100.0,
        ks_thresh=0.0,
        pd_thresh=0.0,
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# MaskCLIP is training-free (MaskCLIPHead.loss raises). These keys exist only
# so that the usual tooling can parse the config.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.0))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=0, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
