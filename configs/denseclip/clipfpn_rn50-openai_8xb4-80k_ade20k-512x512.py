# The paper's baseline: Semantic FPN on the CLIP RN50 image tower, ADE20K
# 512x512, the same 80k schedule as DenseCLIP (paper: 39.6 mIoU).
_base_ = [
    '../_base_/default_runtime.py', 'mmseg::_base_/datasets/ade20k.py',
    './_base_/clipfpn_rn50.py', './_base_/schedule_adamw-80k.py'
]
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=4)
