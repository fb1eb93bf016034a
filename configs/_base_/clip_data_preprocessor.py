# CLIP's image normalisation (OpenAI CLIP's mean/std, RGB) for segmentors:
# `_base_ = [..., '../_base_/clip_data_preprocessor.py']` then
# `model = dict(data_preprocessor={{_base_.data_preprocessor}}, ...)`.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
