# AnoVL (TFA + TTA) on MVTec AD, the paper's setting (see README.md).
#   python tools/test.py configs/anovl/anovl_vit-b16plus-laion400m_mvtec-240x240.py none
# Training-free only: --cfg-options model.head.tta=None
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/mvtec_ad.py',
    '../_base_/schedules/training_free.py',
    '../_base_/models/anovl_vit-b16plus-laion400m.py'
]
# AnoVL's data path (vl_test.py): PIL (antialiased) resize to 240x240, masks
# resized bilinearly and binarised at 0.5, prompts with the raw folder names
# ('metal_nut')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnomalyAnnotations'),
    dict(type='PILAnomalyResize', scale=(240, 240)),
    dict(type='PackAnomalyInputs'),
]
test_dataloader = dict(
    dataset=dict(pipeline=test_pipeline, readable_names=False))
val_dataloader = test_dataloader
# heat maps for tools/test.py --show-dir
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
