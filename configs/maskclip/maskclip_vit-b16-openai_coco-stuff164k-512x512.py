# MaskCLIP ViT-B/16 (OpenAI CLIP), annotation-free, on COCO-Stuff 164k val
# (171 classes, mmseg's COCOStuffDataset after
# tools/dataset_converters/coco_stuff164k.py); reported 12.5 mIoU.
# mmseg's test pipeline (short side 512), whole-image test, 85 templates,
# ImageNet mean/std, no key smoothing / prompt denoising.
#   python tools/test.py configs/maskclip/maskclip_vit-b16-openai_coco-stuff164k-512x512.py none
_base_ = [
    '../_base_/models/maskclip_vit-b16-openai.py',
    'mmseg::_base_/datasets/coco-stuff164k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/training_free.py'
]
# MaskCLIP's own 171 names (coco_stuff_classes of the authors'
# tools/maskclip_utils/prompt_engineering.py), in COCOStuffDataset's order:
# mmseg's names with 'X-other'/'X-stuff' -> 'X' and 'A-B' -> 'B A', except
# the authors' 'blind window' and 'playingfield'
# (tests/configs/test_maskclip_configs.py checks it).
vocabulary = [
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
    'building', 'bush', 'cabinet', 'cage', 'cardboard', 'carpet', 'ceiling',
    'tile ceiling', 'cloth', 'clothes', 'clouds', 'counter', 'cupboard',
    'curtain', 'desk', 'dirt', 'door', 'fence', 'marble floor', 'floor',
    'stone floor', 'tile floor', 'wood floor', 'flower', 'fog', 'food',
    'fruit', 'furniture', 'grass', 'gravel', 'ground', 'hill', 'house',
    'leaves', 'light', 'mat', 'metal', 'mirror', 'moss', 'mountain', 'mud',
    'napkin', 'net', 'paper', 'pavement', 'pillow', 'plant', 'plastic',
    'platform', 'playingfield', 'railing', 'railroad', 'river', 'road',
    'rock', 'roof', 'rug', 'salad', 'sand', 'sea', 'shelf', 'sky',
    'skyscraper', 'snow', 'solid', 'stairs', 'stone', 'straw', 'structural',
    'table', 'tent', 'textile', 'towel', 'tree', 'vegetable', 'brick wall',
    'concrete wall', 'wall', 'panel wall', 'stone wall', 'tile wall',
    'wood wall', 'water', 'waterdrops', 'blind window', 'window', 'wood'
]
model = dict(
    decode_head=dict(vocabulary=vocabulary, num_classes=len(vocabulary)))
