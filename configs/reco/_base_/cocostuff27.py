# COCO-Stuff-27 (STEGO / ReCo protocol): the curated val images of STEGO
# (curated/val2017/Coco164kFull_Stuff_Coarse.txt), the 182 fine labels
# mapped to the 27 coarse classes of the COCO-Stuff hierarchy (12 thing
# and 15 stuff super-categories; IIC's cocostuff_fine_to_coarse), shorter
# side 320 and a 320x320 centre crop. Prepare with
#   python tools/dataset_converters/reco_benchmarks.py cocostuff27 data/coco_stuff164k
# (see configs/reco/README.md; writes annotations/val2017/*_labelTrainIds27.png
# and curated_val.txt).
dataset_type = 'BaseSegDataset'
data_root = 'data/coco_stuff164k'
classes = ('electronic', 'appliance', 'food things', 'furniture things',
           'indoor', 'kitchen', 'accessory', 'animal', 'outdoor', 'person',
           'sports', 'vehicle', 'ceiling', 'floor', 'food stuff',
           'furniture stuff', 'raw material', 'textile', 'wall', 'window',
           'building', 'ground', 'plant', 'sky', 'solid', 'structural', 'water')
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ResizeShortestEdge', scale=320, max_size=100000),
    dict(type='CenterCrop', crop_size=320),
    dict(type='PackSegInputs'),
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
        img_suffix='.jpg',
        seg_map_suffix='_labelTrainIds27.png',
        ann_file='curated_val.txt',
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
