# AnoVL on the synthetic world's tiny CLIP ResNet ("clipdense-synth-rn";
# `make quickstart` writes work_dirs/quickstart/tiny_clip.pt, read by both
# towers): V-V attention on the attention pool, domain-aware state prompts,
# no temperature, 3x3 smoothing, 22 views, per-image test-time adaptation.
# The leaf configs switch parts off for the ablation.
clip_arch = 'clipdense-synth-rn'
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0)
model = dict(
    type='AnoVLDetector',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(3, ),
        joint_outputs=('global', ),
        freeze='all'),
    head=dict(
        type='AnoVLHead',
        text_encoder=dict(
            type='AnomalyPromptEncoder',
            arch=clip_arch,
            pretrained=clip_weights,
            style='anovl'),
        logit_scale=1.0,
        smooth_kernel=3,
        tta=dict(steps=5, lr=1e-3, noise_std=0.055, hard_weight=0.5,
                 adapter='text_basis')),
    feature_path='vv',
    image_views='anovl')
