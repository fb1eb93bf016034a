# AnoVL (TFA + TTA) on VisA. AnoVL's vis_test.py uses the plain linear
# adapter (on the normalised token) instead of the text-basis one.
#   python tools/test.py configs/anovl/anovl_vit-b16plus-laion400m_visa-240x240.py none
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/visa.py',
    '../_base_/schedules/training_free.py',
    '../_base_/models/anovl_vit-b16plus-laion400m.py'
]
# vis_test.py: short side to 240 with PIL (antialiased), masks bilinear then
# > 0.5, two 240x240 tiles at the ends of the long side scored and averaged
# where they overlap (image score: mean of the two tiles; no 22 views),
# prompt names as the folders (macaroni1/2 -> macaroni).
model = dict(head=dict(tta=dict(adapter='linear')), image_views='tiles')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnomalyAnnotations'),
    dict(type='PILAnomalyResize', scale=240),
    dict(type='PackAnomalyInputs'),
]
test_dataloader = dict(
    dataset=dict(pipeline=test_pipeline, readable_names=False))
val_dataloader = test_dataloader
# the maps and masks at the resized image size (240 x long side), as AnoVL
test_evaluator = dict(type='AnomalyMetric', map_size=None)
val_evaluator = test_evaluator
# heat maps for tools/test.py --show-dir
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
