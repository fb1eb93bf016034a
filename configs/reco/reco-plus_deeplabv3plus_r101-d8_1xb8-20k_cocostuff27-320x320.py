# ReCo+ (unsupervised adaptation) on cocostuff27: DeepLabv3+ R101 trained on
# ReCo's pseudo-labels of the training images. Make them first (no ground
# truth is read):
#   python tools/dataset_converters/reco_pseudo_labels.py \
#       configs/reco/reco_rn50x16-openai_cocostuff27-320x320.py \
#       --img-dir {data_root}/images/train2017 --out-dir work_dirs/reco/pseudo_labels/cocostuff27-train
# (the authors pseudo-label with ReCo + CRF). Validation reads the ground truth.
_base_ = [
    '../_base_/default_runtime.py', './_base_/reco_plus_deeplabv3plus_r101.py',
    './_base_/cocostuff27.py'
]
pseudo_label_dir = 'work_dirs/reco/pseudo_labels/cocostuff27-train'
model = dict(decode_head=dict(num_classes=27))
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='BaseSegDataset',
        data_root='',
        metainfo=dict(classes={{_base_.classes}}),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        ann_file=pseudo_label_dir + '/split.txt',
        data_prefix=dict(img_path='data/cocostuff/images/train2017',
                         seg_map_path=pseudo_label_dir),
        pipeline={{_base_.reco_plus_train_pipeline}}))
