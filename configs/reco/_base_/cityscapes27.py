# Cityscapes-27 (STEGO / ReCo protocol): the 27 classes of labelIds 7..33
# (label = labelId - 7; the others are 255), val split, shorter side resized
# to 320 and a 320x320 centre crop of image *and* ground truth, both with
# nearest-neighbour PIL resizing (the authors' STEGO transform), scored on
# the crop (`CenterCropFrame` makes the crop the frame of the prediction;
# its `crop_frame` meta lets pseudo-labels be pasted back into the image).
# Prepare the label maps with
#   python tools/dataset_converters/reco_benchmarks.py cityscapes27 data/cityscapes
# (writes gtFine/<split>/<city>/*_gtFine_labelIds27.png next to the originals).
dataset_type = 'BaseSegDataset'
data_root = 'data/cityscapes'
classes = ('road', 'sidewalk', 'parking', 'rail track', 'building', 'wall',
           'fence', 'guard rail', 'bridge', 'tunnel', 'pole', 'polegroup',
           'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
           'person', 'rider', 'car', 'truck', 'bus', 'caravan', 'trailer',
           'train', 'motorcycle', 'bicycle')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CenterCropFrame', scale=320, crop_size=320, interpolation='nearest'),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'reduced_zero_label',
                   'crop_frame')),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=dict(classes=classes),
        img_suffix='_leftImg8bit.png',
        seg_map_suffix='_gtFine_labelIds27.png',
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
