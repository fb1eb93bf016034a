# MaskCLIP ViT-B/16 (OpenAI CLIP), annotation-free, on PASCAL VOC 2012 val
# WITH background (21 classes, mmseg's PascalVOCDataset as is). This is not
# the paper's protocol (that is voc12-20cls, background ignored): here
# 'background' is one more class of the vocabulary, whose text embedding has
# to compete with the objects'. Alternative: MaskCLIPHead(bg_thresh=...,
# bg_index=0) assigns background where no class is confident. 85 templates,
# short side 512, whole-image test, ImageNet mean/std.
_base_ = [
    '../_base_/models/maskclip_vit-b16-openai.py',
    'mmseg::_base_/datasets/pascal_voc12.py',
    '../_base_/default_runtime.py', '../_base_/schedules/training_free.py'
]
vocabulary = [
    'background', 'airplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'dining table', 'dog', 'horse', 'motorbike',
    'person', 'potted plant', 'sheep', 'sofa', 'train', 'tv monitor'
]
model = dict(
    decode_head=dict(vocabulary=vocabulary, num_classes=len(vocabulary)))
