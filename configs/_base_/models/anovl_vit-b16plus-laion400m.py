# AnoVL (Deng et al., arXiv 2308.15939; code hq-deng/AnoVL @3a70bfd) as
# released: OpenCLIP ViT-B-16-plus-240 with LAION-400M (e32) weights, 240 px
# (15x15 patches), V-V attention dual path over all 12 blocks, unified
# domain-aware state prompts (7+7 states x 66 templates), no temperature,
# 3x3 smoothing, image score over 22 views, and the per-image test-time
# adapter (5 AdamW steps at 1e-3, token noise 0.055, entropy + 0.5 x hard).
clip_arch = 'ViT-B-16-plus-240'
clip_weights = 'laion400m_e32'
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
        type='OpenCLIPViT',
        arch=clip_arch,
        pretrained=clip_weights,
        pyramid=False,
        out_indices=(-1, ),
        joint_outputs=('global', 'vv'),  # V-V path of every block (AnoVL)
        freeze='all'),
    head=dict(
        type='AnoVLHead',
        text_encoder=dict(
            type='AnomalyPromptEncoder',
            arch=clip_arch,
            pretrained=clip_weights,
            style='anovl'),  # mean of unnormalised sentence embeddings;
        # templates without a trailing period, as prompt_ensemble.py
        logit_scale=1.0,  # no temperature (as released)
        smooth_kernel=3,
        tta=dict(steps=5, lr=1e-3, noise_std=0.055, hard_weight=0.5,
                 adapter='text_basis',
                 # as vl_test.py runs it: the adapter on the raw tokens, one
                 # AdamW per class kept across images, one random stream
                 # for the run (clipdense: True, 'image', 'image')
                 normalize_tokens=False, optimizer_scope='class',
                 rng_scope='run')),
    feature_path='vv',
    image_views='anovl',
    # utils.aug: diagonal shifts, align_corners=True, grey of the network
    # input ('clipdense': axis shifts, grey in pixel space)
    view_style='authors',
    align_corners=True)  # maps upsampled as F.interpolate(align_corners=True)
