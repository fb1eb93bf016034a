# COCO-Stuff 164k, 171 classes:
# the class names the ClearCLIP and SCLIP configs give
# (mmseg's, made readable as in configs/maskclip; not the authors' renamed
# lists), in label order. A leaf puts this file in its `_base_` and sets
# `model.decode_head` to `vocabulary={{_base_.vocabulary}}` and
# `num_classes={{_base_.num_classes}}`.
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
num_classes = len(vocabulary)
