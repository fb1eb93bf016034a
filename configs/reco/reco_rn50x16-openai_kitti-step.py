# ReCo (zero-shot transfer, no target images) with the paper's settings on
# kitti_step; see configs/reco/README.md for data preparation and the weights.
_base_ = [
    '../_base_/default_runtime.py', './_base_/reco_rn50x16-openai_deit-s16-sin.py',
    './_base_/kitti_step.py'
]
model = dict(decode_head=dict(vocabulary={{_base_.classes}}))
