# AnoVL's method on OpenAI CLIP ViT-L/14@336 (the tower APRIL-GAN and
# AnomalyCLIP use; not a setting of the AnoVL paper, which used
# ViT-B-16-plus-240): 336 px, 24x24 patches, V-V path over all 24 blocks.
#   python tools/test.py configs/anovl/anovl_vit-l14-336-openai_mvtec-336x336.py none
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/mvtec_ad.py',
    '../_base_/schedules/training_free.py',
    '../_base_/models/anovl_vit-b16plus-laion400m.py'
]
img_size = 336
model = dict(
    backbone=dict(arch='ViT-L-14-336', pretrained='openai'),
    head=dict(text_encoder=dict(arch='ViT-L-14-336', pretrained='openai')))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnomalyAnnotations'),
    dict(type='PILAnomalyResize', scale=(img_size, img_size)),  # as AnoVL's code
    dict(type='PackAnomalyInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline, readable_names=False))
val_dataloader = test_dataloader
train_dataloader = test_dataloader
# heat maps for tools/test.py --show-dir
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
