# SCLIP (Wang et al., ECCV 2024), training-free, OpenAI CLIP ViT-B/16, on
# ADE20K val, 150 classes; the paper reports 16.1 mIoU (its Table 1, without post-processing).
# Settings of the authors' config for this benchmark: short side resized to
# 336, sliding window 224x224 with stride 112, logit scale 40, OpenAI's 80
# ImageNet templates, CLIP mean/std. Class names: mmseg's, made readable as in
# configs/maskclip (not the authors' renamed lists). No checkpoint needed:
#   python tools/test.py configs/sclip/sclip_vit-b16-openai_ade20k-336x336.py none
_base_ = [
    '../_base_/models/sclip_vit-b16-openai.py',
    'mmseg::_base_/datasets/ade20k.py',
    '../_base_/vocabularies/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/training_free.py'
]
model = dict(
    decode_head=dict(
        vocabulary={{_base_.vocabulary}},
        num_classes={{_base_.num_classes}},
        logit_scale=40.0,),
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
