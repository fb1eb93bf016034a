# ClearCLIP (Lan et al., ECCV 2024), training-free, OpenAI CLIP ViT-B/16, on
# PASCAL VOC 2012 val, 21 classes (background); the paper reports 51.8 mIoU (its Table 1, without post-processing).
# Settings of the authors' config for this benchmark: short side resized to
# 448, sliding window 448x448 with stride 224, logit scale 50, OpenAI's 80
# ImageNet templates, CLIP mean/std. Class names: mmseg's, made readable as in
# configs/maskclip (not the authors' renamed lists). No checkpoint needed:
#   python tools/test.py configs/clearclip/clearclip_vit-b16-openai_voc12-448x448.py none
_base_ = [
    '../_base_/models/clearclip_vit-b16-openai.py',
    'mmseg::_base_/datasets/pascal_voc12.py',
    '../_base_/vocabularies/voc12.py',
    '../_base_/default_runtime.py', '../_base_/schedules/training_free.py'
]
model = dict(
    decode_head=dict(
        vocabulary={{_base_.vocabulary}},
        num_classes={{_base_.num_classes}},
        logit_scale=50.0,
        bg_thresh=0.5,  # the authors' prob_thd: below it -> background
        bg_index=0,),
    test_cfg=dict(mode='slide', crop_size=(448, 448), stride=(224, 224)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
