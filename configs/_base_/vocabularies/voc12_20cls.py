# PASCAL VOC 2012, 20 classes (background ignored):
# the class names the ClearCLIP and SCLIP configs give
# (mmseg's, made readable as in configs/maskclip; not the authors' renamed
# lists), in label order. A leaf puts this file in its `_base_` and sets
# `model.decode_head` to `vocabulary={{_base_.vocabulary}}` and
# `num_classes={{_base_.num_classes}}`.
vocabulary = [
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'table', 'dog', 'horse', 'motorbike', 'person',
    'potted plant', 'sheep', 'sofa', 'train', 'tv monitor'
]
num_classes = len(vocabulary)
