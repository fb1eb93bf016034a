# ReCo (training-free; no pixel labels) on the synthetic world with the proxy
# CLIP ViT (issue #25; "clipdense-synth-vit8": patch 8, 16x16 tokens at
# 128 px, work_dirs/proxy/proxy_clip.pt from `make proxy-clip`). As in the
# tiny-CLIP config one CLIP does everything: retrieval (its global image
# embedding), the co-segmentation features and the text attention (MaskCLIP's
# value path of the last block). The settings are the tiny-CLIP config's,
# fixed before any run on the proxy: k=10, the same plain class names,
# templates and context concepts, the authors' column slices and progressive
# context elimination, the dense CRF, 128 px archive images. The feature
# level is the analogue of the ResNet's last stage (C5): the ViT's last
# block (the authors co-segment with the last layer of a DeiT-S/16 ViT), at
# stride 8 (16x16) where C5 of the tiny CLIP is 4x4.
#   python tools/test.py configs/reco/reco_clip-synth-vit8_synthetic-128x128.py none
_base_ = ['./reco_clip-synth-rn_synthetic-128x128.py']
clip_arch = 'clipdense-synth-vit8'
clip_weights = 'work_dirs/proxy/proxy_clip.pt'
model = dict(
    clip_backbone=dict(
        _delete_=True,
        type='OpenCLIPViT',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(-1, ),
        pyramid=False,
        joint_outputs=('value', ),
        freeze='all'),
    dense_feature=0,  # the last block's patch tokens (the C5 analogue)
    decode_head=dict(text_encoder=dict(arch=clip_arch, pretrained=clip_weights)),
    index=dict(cache_file='work_dirs/reco/index/synthetic-flat-train_clip-synth-vit8.npz'))
