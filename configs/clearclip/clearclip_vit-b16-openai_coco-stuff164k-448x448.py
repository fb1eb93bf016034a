# ClearCLIP (Lan et al., ECCV 2024), training-free, OpenAI CLIP ViT-B/16, on
# COCO-Stuff 164k val, 171 classes; the paper reports 23.9 mIoU (its Table 1, without post-processing).
# Settings of the authors' config for this benchmark: short side resized to
# 448, sliding window 448x448 with stride 224, logit scale 50, OpenAI's 80
# ImageNet templates, CLIP mean/std. Class names: mmseg's, made readable as in
# configs/maskclip (not the authors' renamed lists). No checkpoint needed:
#   python tools/test.py configs/clearclip/clearclip_vit-b16-openai_coco-stuff164k-448x448.py none
_base_ = [
    '../_base_/models/clearclip_vit-b16-openai.py',
    'mmseg::_base_/datasets/coco-stuff164k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/training_free.py'
]
vocabulary = [
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
    'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork',
    'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop',
    'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
    'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush', 'banner', 'blanket', 'branch',
    'bridge', 'building', 'bush', 'cabinet', 'cage', 'cardboard', 'carpet',
    'ceiling', 'tile ceiling', 'cloth', 'clothes', 'clouds', 'counter',
    'cupboard', 'curtain', 'desk', 'dirt', 'door', 'fence', 'marble floor',
    'floor', 'stone floor', 'tile floor', 'wood floor', 'flower', 'fog',
    'food', 'fruit', 'furniture', 'grass', 'gravel', 'ground', 'hill',
    'house', 'leaves', 'light', 'mat', 'metal', 'mirror', 'moss', 'mountain',
    'mud', 'napkin', 'net', 'paper', 'pavement', 'pillow', 'plant',
    'plastic', 'platform', 'playing field', 'railing', 'railroad', 'river',
    'road', 'rock', 'roof', 'rug', 'salad', 'sand', 'sea', 'shelf', 'sky',
    'skyscraper', 'snow', 'solid', 'stairs', 'stone', 'straw', 'structural',
    'table', 'tent', 'textile', 'towel', 'tree', 'vegetable', 'brick wall',
    'concrete wall', 'wall', 'panel wall', 'stone wall', 'tile wall',
    'wood wall', 'water', 'waterdrops', 'window blind', 'window', 'wood'
]
model = dict(
    decode_head=dict(
        vocabulary=vocabulary,
        num_classes=len(vocabulary),
        logit_scale=50.0,),
    test_cfg=dict(mode='slide', crop_size=(448, 448), stride=(224, 224)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
