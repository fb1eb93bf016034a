# CLIP's image normalisation (the authors' *_clip dataset configs).
clip_data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    bgr_to_rgb=True,
    pad_size_divisor=32)
