# AnoVL training-free (TFA) on the synthetic world's MVTec-format tree with
# the world's tiny CLIP ResNet: V-V attention on the ResNet's attention pool,
# domain-aware state prompts, no temperature, 3x3 smoothing, image score over
# 22 views; no adaptation. Ablation row 2 of 3.
#   python tools/test.py configs/anovl/anovl-tfa_clip-synth-rn_synthetic-mvtec-128x128.py none
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_mvtec.py',
    '../_base_/schedules/training_free.py', '../_base_/models/anovl_clip-synth-rn.py'
]
model = dict(head=dict(tta=None))
# heat maps for tools/test.py --show-dir
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
