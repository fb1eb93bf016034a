# MaskCLIP RN50 (OpenAI CLIP), annotation-free, PASCAL VOC 2012 val without
# background (20 classes); reported 41.5 mIoU (VOC-aug w/o bg, 512). Same
# protocol as the ViT-B/16 config; the backbone is CLIP's ResNet with
# MaskCLIP's value path c_proj(v_proj(x)).
_base_ = ['./maskclip_vit-b16-openai_voc12-20cls-512x512.py']
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
