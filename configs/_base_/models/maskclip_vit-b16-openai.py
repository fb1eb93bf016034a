# MaskCLIP (Zhou et al., ECCV 2022), training-free, with OpenAI's CLIP
# ViT-B/16: the last block's value path + ln_post + proj gives dense
# joint-space features (OpenCLIPViT joint_outputs 'value'); 'keys' feeds key
# smoothing. Classified by the cosine with the text embeddings of the
# vocabulary (85 MaskCLIP templates), temperature 100. A leaf config sets
# `vocabulary` (and num_classes = its length). No key smoothing / prompt
# denoising: the paper's annotation-free numbers use neither (set
# ks_thresh=1.0 / pd_thresh=0.5 to try them).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # ImageNet mean/std, as MaskCLIP's configs
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPViT',
        arch='ViT-B-16',
        pretrained='openai',
        out_indices=(-1, ),
        pyramid=False,
        joint_outputs=('value', 'keys'),
        # the authors' mmseg ViT port (configs/_base_/models/maskclip_vit16.py
        # of chongzhou96/MaskCLIP): exact GELU and LayerNorm eps 1e-6, not
        # CLIP's QuickGELU / 1e-5, and a plain (not antialiased) bicubic
        # resize of the positional table; their numbers come from it.
        # CLIP's own: quick_gelu=None, ln_eps=None, pos_antialias=True.
        quick_gelu=False,
        ln_eps=1e-6,
        pos_antialias=False,
        freeze='all'),
    decode_head=dict(
        type='MaskCLIPHead',
        text_encoder=dict(
            type='OpenCLIPTextEncoder',
            arch='ViT-B-16',
            pretrained='openai',
            templates='maskclip'),
        logit_scale=100.0,
        ks_thresh=0.0,
        pd_thresh=0.0,
        # MaskCLIP's own scores and refinements: keys normalised over the
        # tokens, only low-confidence pixels smoothed, cosine output
        # ('clipdense': per-token cosine of the keys, log-probabilities)
        refine_mode='authors',
        align_corners=False),
    train_cfg=dict(),
    # MaskCLIP tests on the whole (resized) image
    test_cfg=dict(mode='whole'))
