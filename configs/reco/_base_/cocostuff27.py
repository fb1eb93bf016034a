# COCO-Stuff-27 (STEGO / ReCo protocol): STEGO's curated val images
# (curated/val2017/Coco164kFull_Stuff_Coarse.txt), the fine labels mapped to
# the 27 coarse classes of the COCO-Stuff hierarchy (12 thing and 15 stuff
# super-categories; clipdense.datasets.coco_stuff27), shorter side 320 and a
# 320x320 centre crop of image and ground truth with nearest-neighbour PIL
# resizing, scored on the crop. The folder is STEGO's / ReCo's COCO-Stuff
# folder (images/val2017/*.jpg, annotations/val2017/*.png stuffthingmaps,
# curated/); write the 27-class maps with
#   python tools/dataset_converters/reco_benchmarks.py cocostuff27 data/cocostuff
# (annotations/val2017/<id>_labelTrainIds27.png).
dataset_type = 'BaseSegDataset'
data_root = 'data/cocostuff'
classes = ('electronic', 'appliance', 'food things', 'furniture things',
           'indoor', 'kitchen', 'accessory', 'animal', 'outdoor', 'person',
           'sports', 'vehicle', 'ceiling', 'floor', 'food stuff',
           'furniture stuff', 'raw material', 'textile', 'wall', 'window',
           'building', 'ground', 'plant', 'sky', 'solid', 'structural', 'water')
# What ReCo segments: the authors predict COCO-Stuff's 171 fine classes and
# map each pixel's argmax to its coarse class (clipdense.datasets.coco_stuff27:
# COCO_STUFF_171, fine171_to_coarse27()).
fine_classes = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush', 'banner', 'blanket', 'branch', 'bridge',
    'building other', 'bush', 'cabinet', 'cage', 'cardboard', 'carpet',
    'ceiling other', 'ceiling tile', 'cloth', 'clothes', 'clouds', 'counter',
    'cupboard', 'curtain', 'desk stuff', 'dirt', 'door stuff', 'fence',
    'floor marble', 'floor other', 'floor stone', 'floor tile', 'floor wood',
    'flower', 'fog', 'food other', 'fruit', 'furniture other', 'grass',
    'gravel', 'ground other', 'hill', 'house', 'leaves', 'light', 'mat',
    'metal', 'mirror stuff', 'moss', 'mountain', 'mud', 'napkin', 'net',
    'paper', 'pavement', 'pillow', 'plant other', 'plastic', 'platform',
    'playingfield', 'railing', 'railroad', 'river', 'road', 'rock', 'roof',
    'rug', 'salad', 'sand', 'sea', 'shelf', 'sky other', 'skyscraper', 'snow',
    'solid other', 'stairs', 'stone', 'straw', 'structural other', 'table',
    'tent', 'textile other', 'towel', 'tree', 'vegetable', 'wall brick',
    'wall concrete', 'wall other', 'wall panel', 'wall stone', 'wall tile',
    'wall wood', 'water other', 'waterdrops', 'window blind', 'window other',
    'wood')
# the 171 -> 27 table, by name: it has one source,
# clipdense.datasets.coco_stuff27.fine171_to_coarse27() (ReCoHead resolves
# the name; see its fine_to_coarse argument)
fine_to_coarse = 'cocostuff27'
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
        img_suffix='.jpg',
        seg_map_suffix='_labelTrainIds27.png',
        ann_file='curated/val2017/Coco164kFull_Stuff_Coarse.txt',
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
