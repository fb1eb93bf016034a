# PASCAL Context, 59 classes (background ignored):
# the class names the ClearCLIP and SCLIP configs give
# (mmseg's, made readable as in configs/maskclip; not the authors' renamed
# lists), in label order. A leaf puts this file in its `_base_` and sets
# `model.decode_head` to `vocabulary={{_base_.vocabulary}}` and
# `num_classes={{_base_.num_classes}}`.
vocabulary = [
    'aeroplane', 'bag', 'bed', 'bedclothes', 'bench', 'bicycle', 'bird',
    'boat', 'book', 'bottle', 'building', 'bus', 'cabinet', 'car', 'cat',
    'ceiling', 'chair', 'cloth', 'computer', 'cow', 'cup', 'curtain', 'dog',
    'door', 'fence', 'floor', 'flower', 'food', 'grass', 'ground', 'horse',
    'keyboard', 'light', 'motorbike', 'mountain', 'mouse', 'person', 'plate',
    'platform', 'potted plant', 'road', 'rock', 'sheep', 'shelves',
    'sidewalk', 'sign', 'sky', 'snow', 'sofa', 'table', 'track', 'train',
    'tree', 'truck', 'tv monitor', 'wall', 'water', 'window', 'wood'
]
num_classes = len(vocabulary)
