# The paper's baseline with the CLIP RN101 image tower (paper: 42.7 mIoU).
_base_ = ['./clipfpn_rn50-openai_8xb4-80k_ade20k-512x512.py']
model = dict(backbone=dict(arch='RN101'))
