# WinCLIP zero-shot on VisA (resized to 240x240).
#   python tools/test.py configs/winclip/winclip_vit-b16plus-laion400m_visa-240x240.py none
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/visa.py',
    '../_base_/schedules/training_free.py',
    '../_base_/models/winclip_vit-b16plus-laion400m.py'
]
# heat maps for tools/test.py --show-dir
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
