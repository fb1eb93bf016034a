# SCLIP (Wang et al., ECCV 2024): the last block's attention is correlative self-attention, q-q plus k-k
# (clipdense/models/utils/sclip.py),
# then ln_post and proj on every token (OpenCLIPViT joint output 'sclip'), classified
# by the cosine with the text embeddings of OpenAI's 80 ImageNet templates
# (MaskCLIPHead with value_key='sclip'; the authors' default logit scale 40.0).
# A leaf config sets `vocabulary` (and num_classes = its length).
_base_ = ['../clip_data_preprocessor.py']
model = dict(
    type='EncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='OpenCLIPViT',
        arch='ViT-B-16',
        pretrained='openai',
        out_indices=(-1, ),
        pyramid=False,
        joint_outputs=('sclip', ),
        freeze='all'),
    decode_head=dict(
        type='MaskCLIPHead',
        text_encoder=dict(
            type='OpenCLIPTextEncoder',
            arch='ViT-B-16',
            pretrained='openai',
            templates='imagenet'),
        value_key='sclip',
        logit_scale=40.0,
        align_corners=False),
    train_cfg=dict(),
    # the authors' sliding window (leaf configs set it per benchmark)
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112)))
