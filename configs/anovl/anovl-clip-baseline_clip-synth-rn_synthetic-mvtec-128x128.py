# The CLIP baseline of AnoVL's ablation (row 1 of 3) on the synthetic world:
# plain CLIP patch tokens (DenseCLIP's attention pool over all positions,
# q-k attention), one prompt a side ("a photo of a normal/damaged {}."),
# no smoothing, the image alone for the image score, no adaptation.
#   python tools/test.py configs/anovl/anovl-clip-baseline_clip-synth-rn_synthetic-mvtec-128x128.py none
_base_ = ['./anovl-tfa_clip-synth-rn_synthetic-mvtec-128x128.py']
model = dict(
    backbone=dict(joint_outputs=('global', 'dense')),
    head=dict(text_encoder=dict(style='clip'), smooth_kernel=1, tta=None),
    feature_path='dense',
    image_views='single')
