# DenseCLIP RN101 + Semantic FPN on ADE20K, 512x512, 80k (paper: 45.1 mIoU).
# The joint space is 512-d (the context decoder follows).
_base_ = ['./denseclip_rn50-openai_8xb4-80k_ade20k-512x512.py']
model = dict(
    backbone=dict(arch='RN101'), text_encoder=dict(arch='RN101'))
