# ReCo's paper settings (Shin et al., NeurIPS 2022; authors' configs/reco_*.yaml):
# retrieval with CLIP ViT-L/14@336px over ImageNet-1K train (unlabelled),
# 85 templates, k = 50; co-segmentation on DeiT-S/16-SIN patch tokens of the
# retrieved images (224 px centre crops); language guidance and context
# elimination (tree, sky, building, road, person); inference: reference
# scores times the dense-CLIP (RN50x16, MaskCLIP value path) text attention
# sigmoid(10 cos), dense CRF. The authors' code's behaviour is kept where it
# differs from the paper's text (column slices of the co-segmentation,
# contexts eliminated progressively); clipdense's alternatives are the
# switches named in configs/reco/README.md. Weights: 'openai' tags download through open_clip; the
# DeiT-S/16-SIN checkpoint (Naseer et al., "Intriguing Properties of Vision
# Transformers") must be downloaded by hand to `deit_sin_weights`.
deit_sin_weights = 'checkpoints/deit_s_sin_dist.pth'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # the authors normalise with ImageNet statistics for both networks
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='ReCo',
    data_preprocessor=data_preprocessor,
    clip_backbone=dict(
        type='OpenCLIPResNet',
        arch='RN50x16',
        pretrained='openai',
        out_indices=(3, ),
        joint_outputs=('value', ),
        freeze='all'),
    dense_encoder=dict(
        type='TimmViTPatchTokens',
        model_name='deit_small_distilled_patch16_224',
        pretrained=deit_sin_weights),
    dense_feature=0,
    clip_feature='value',
    decode_head=dict(
        type='ReCoHead',
        text_encoder=dict(
            type='OpenCLIPTextEncoder',
            arch='RN50x16',
            pretrained='openai',
            templates='maskclip'),
        vocabulary=None,  # set by the dataset config
        k=50,
        context_concepts=['tree', 'sky', 'building', 'road', 'person'],
        concept_aliases=dict(vegetation='tree'),
        language_guidance=True,
        context_elimination=True,
        dense_clip_inference=True,
        text_attention_temperature=10.0,
        # the authors' column slices (their numbers); 'per_image' is the fix
        column_slicing='reference_code',
        # the authors' order: tree; sky without tree; building without both; ...
        progressive_context_elimination=True),
    index=dict(
        folder='data/imagenet/train',
        arch='ViT-L-14-336',
        pretrained='openai',
        templates='maskclip',
        batch_size=256,
        faiss_min_pool=50000,
        cache_file='work_dirs/reco/index/imagenet-train_vit-l14-336-openai.npz'),
    archive_size=224,
    archive_batch_size=25,
    archive_resize='pil-bilinear',
    # the paper's numbers use the dense CRF (module of `pydensecrf2`)
    crf=dict(iters=10),
    # reference embeddings reused across runs (safetensors, keyed by weights,
    # index file, options and concept)
    reference_cache='work_dirs/reco/references',
    test_cfg=dict(mode='whole'))
# training-free: nothing to train (the runner accepts these three as None)
train_dataloader = None
optim_wrapper = None
train_cfg = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
