# MaskCLIP ViT-B/16 (OpenAI CLIP), annotation-free, on PASCAL Context val
# with 59 classes (mmseg's PascalContextDataset59: label 0 = background is
# ignored by reduce_zero_label, as in the paper); reported 21.7 mIoU.
# mmseg's Context test pipeline resizes the longer side to 520 (MaskCLIP's
# "520x520"); whole-image test; 85 templates; ImageNet mean/std; no key
# smoothing / prompt denoising (ks_thresh=1.0, pd_thresh=0.5 to try them).
#   python tools/test.py configs/maskclip/maskclip_vit-b16-openai_pascal-context-59-520x520.py none
_base_ = [
    '../_base_/models/maskclip_vit-b16-openai.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
    '../_base_/default_runtime.py', '../_base_/schedules/training_free.py'
]
# MaskCLIP's own class names (pascal_context_classes of the authors'
# prompt_engineering.py) in the dataset's order: mmseg's, with 'airplane',
# 'potted plant', 'tv monitor'
vocabulary = [
    'airplane', 'bag', 'bed', 'bedclothes', 'bench', 'bicycle', 'bird',
    'boat', 'book', 'bottle', 'building', 'bus', 'cabinet', 'car', 'cat',
    'ceiling', 'chair', 'cloth', 'computer', 'cow', 'cup', 'curtain', 'dog',
    'door', 'fence', 'floor', 'flower', 'food', 'grass', 'ground', 'horse',
    'keyboard', 'light', 'motorbike', 'mountain', 'mouse', 'person', 'plate',
    'platform', 'potted plant', 'road', 'rock', 'sheep', 'shelves',
    'sidewalk', 'sign', 'sky', 'snow', 'sofa', 'table', 'track', 'train',
    'tree', 'truck', 'tv monitor', 'wall', 'water', 'window', 'wood'
]
model = dict(
    decode_head=dict(vocabulary=vocabulary, num_classes=len(vocabulary)))
