# AnoVL training-free + per-image test-time adaptation on the synthetic
# world (ablation row 3 of 3): the adapter is reset for every image and
# trained 5 AdamW steps (lr 1e-3) on its own tokens (noise 0.055, entropy +
# 0.5 x hard term).
#   python tools/test.py configs/anovl/anovl-tta_clip-synth-rn_synthetic-mvtec-128x128.py none
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_mvtec.py',
    '../_base_/schedules/training_free.py', '../_base_/models/anovl_clip-synth-rn.py'
]
# heat maps for tools/test.py --show-dir
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
