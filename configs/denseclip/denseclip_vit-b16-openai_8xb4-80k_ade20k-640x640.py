# DenseCLIP ViT-B/16 + Semantic FPN on ADE20K, 640x640, 80k iterations,
# batch 32 (8 GPUs x 4), post-model prompting (paper: 50.6 mIoU).
_base_ = [
    '../_base_/default_runtime.py', 'mmseg::_base_/datasets/ade20k_640x640.py',
    './_base_/denseclip_vit-b16.py', './_base_/schedule_adamw-80k.py'
]
crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    classes_from='ADE20KDataset')
train_dataloader = dict(batch_size=4)
