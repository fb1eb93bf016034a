# AnoVL (TFA + TTA) on MVTec AD, the paper's setting (see README.md).
#   python tools/test.py configs/anovl/anovl_vit-b16plus-laion400m_mvtec-240x240.py none
# Training-free only: --cfg-options model.head.tta=None
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/mvtec_ad.py',
    '../_base_/schedules/training_free.py',
    '../_base_/models/anovl_vit-b16plus-laion400m.py'
]
# heat maps for tools/test.py --show-dir
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
