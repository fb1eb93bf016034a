# ReCo (zero-shot transfer, no target images) with the paper's settings on
# cocostuff27; see configs/reco/README.md for data preparation and the weights.
_base_ = [
    '../_base_/default_runtime.py', './_base_/reco_rn50x16-openai_deit-s16-sin.py',
    './_base_/cocostuff27.py'
]
# the authors' protocol: segment the 171 fine classes, score their coarse
# classes (clipdense's alternative: vocabulary={{_base_.classes}} and
# fine_to_coarse=None, the 27 coarse names directly)
model = dict(
    decode_head=dict(
        vocabulary={{_base_.fine_classes}}, fine_to_coarse={{_base_.fine_to_coarse}}))
