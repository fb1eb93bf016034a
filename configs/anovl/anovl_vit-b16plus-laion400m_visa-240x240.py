# AnoVL (TFA + TTA) on VisA. AnoVL's vis_test.py uses the plain linear
# adapter instead of the text-basis one.
#   python tools/test.py configs/anovl/anovl_vit-b16plus-laion400m_visa-240x240.py none
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/visa.py',
    '../_base_/schedules/training_free.py',
    '../_base_/models/anovl_vit-b16plus-laion400m.py'
]
model = dict(head=dict(tta=dict(adapter='linear')))
# heat maps for tools/test.py --show-dir
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
