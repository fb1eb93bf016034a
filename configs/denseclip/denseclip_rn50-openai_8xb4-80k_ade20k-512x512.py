# DenseCLIP RN50 + Semantic FPN on ADE20K, 512x512, 80k iterations, batch 32
# (8 GPUs x 4), post-model prompting: the paper's recipe (paper: 43.5 mIoU).
# The 150 ADE20K class names are the vocabulary (classes_from).
#   tools/dist_train.sh configs/denseclip/denseclip_rn50-openai_8xb4-80k_ade20k-512x512.py 8
_base_ = [
    '../_base_/default_runtime.py', 'mmseg::_base_/datasets/ade20k.py',
    './_base_/denseclip_rn50.py', './_base_/schedule_adamw-80k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    classes_from='ADE20KDataset')
train_dataloader = dict(batch_size=4)
