# MaskCLIP ViT-B/16 (OpenAI CLIP), annotation-free, on PASCAL VOC 2012 val
# without background (20 classes): the paper's setting (Zhou et al., ECCV
# 2022; reported 49.5 mIoU, VOC-aug w/o bg, 512). 85 templates, short side
# resized to 512 (mmseg's VOC test pipeline), whole-image test, ImageNet
# mean/std; no key smoothing / prompt denoising (ks_thresh=1.0 /
# pd_thresh=0.5 to try them). Background pixels are ignored by the dataset
# (configs/_base_/datasets/pascal_voc12_20cls.py). No checkpoint needed:
#   python tools/test.py configs/maskclip/maskclip_vit-b16-openai_voc12-20cls-512x512.py none
_base_ = [
    '../_base_/models/maskclip_vit-b16-openai.py',
    '../_base_/datasets/pascal_voc12_20cls.py',
    '../_base_/default_runtime.py', '../_base_/schedules/training_free.py'
]
# MaskCLIP's own class names (voc_classes of the authors'
# prompt_engineering.py), in the dataset's order
vocabulary = [
    'airplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'dining table', 'dog', 'horse', 'motorbike', 'person',
    'potted plant', 'sheep', 'sofa', 'train', 'tv monitor'
]
model = dict(
    decode_head=dict(vocabulary=vocabulary, num_classes=len(vocabulary)))
