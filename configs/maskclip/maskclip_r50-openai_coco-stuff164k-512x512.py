# MaskCLIP RN50 (OpenAI CLIP), annotation-free, COCO-Stuff 164k val (171
# classes); reported 10.2 mIoU. Same protocol as the ViT-B/16 config.
_base_ = ['./maskclip_vit-b16-openai_coco-stuff164k-512x512.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='OpenCLIPResNet',
        arch='RN50',
        pretrained='openai',
        out_indices=(3, ),
        joint_outputs=('value', 'keys'),  # 'keys' for key smoothing (ks_thresh)
        freeze='all'),
    decode_head=dict(text_encoder=dict(arch='RN50')))
