# ReCo+ (unsupervised adaptation) on kitti_step: DeepLabv3+ R101 trained on
# ReCo's pseudo-labels of the training images. Make them first (no ground
# truth is read):
#   python tools/dataset_converters/reco_pseudo_labels.py \
#       configs/reco/reco_rn50x16-openai_kitti-step.py \
#       --img-dir {data_root}/images/train --out-dir work_dirs/reco/pseudo_labels/kitti_step-train
# (the authors pseudo-label with ReCo + CRF). Validation reads the ground truth.
_base_ = [
    '../_base_/default_runtime.py', './_base_/reco_plus_deeplabv3plus_r101.py',
    './_base_/kitti_step.py'
]
pseudo_label_dir = 'work_dirs/reco/pseudo_labels/kitti_step-train'
model = dict(decode_head=dict(num_classes=19))
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='BaseSegDataset',
        data_root='',
        metainfo=dict(classes={{_base_.classes}}),
        img_suffix='.png',
        seg_map_suffix='.png',
        ann_file=pseudo_label_dir + '/split.txt',
        data_prefix=dict(img_path='data/kitti_step/images/train',
                         seg_map_path=pseudo_label_dir),
        pipeline={{_base_.reco_plus_train_pipeline}}))
