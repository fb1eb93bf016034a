# CLIP's image normalisation (OpenAI CLIP's mean/std, RGB) for segmentors:
# `_base_ = [..., '../_base_/clip_data_preprocessor.py']` then
# `model = dict(data_preprocessor={{_base_.data_preprocessor}}, ...)`.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
