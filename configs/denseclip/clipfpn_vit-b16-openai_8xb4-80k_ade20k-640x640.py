# The paper's baseline: Semantic FPN on the CLIP ViT-B/16 image tower,
# ADE20K 640x640, the same 80k schedule as DenseCLIP (paper: 49.4 mIoU).
_base_ = [
    '../_base_/default_runtime.py', 'mmseg::_base_/datasets/ade20k_640x640.py',
    './_base_/clipfpn_vit-b16.py', './_base_/schedule_adamw-80k.py'
]
crop_size = (640, 640)
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=4)
