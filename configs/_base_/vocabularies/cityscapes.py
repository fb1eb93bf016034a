# Cityscapes, 19 classes:
# the class names the ClearCLIP and SCLIP configs give
# (mmseg's, made readable as in configs/maskclip; not the authors' renamed
# lists), in label order. A leaf puts this file in its `_base_` and sets
# `model.decode_head` to `vocabulary={{_base_.vocabulary}}` and
# `num_classes={{_base_.num_classes}}`.
vocabulary = [
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
    'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
    'truck', 'bus', 'train', 'motorcycle', 'bicycle'
]
num_classes = len(vocabulary)
