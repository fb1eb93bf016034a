# MaskCLIP on the synthetic world with the proxy CLIP ViT (`make proxy-clip`:
# clipdense-synth-vit8, patch 8, 16x16 tokens at 128 px; results/proxy_clip.md),
# training-free (`none` checkpoint):
#   python tools/test.py configs/maskclip/maskclip_clip-synth-vit8_synthetic-128x128.py none
# The data, vocabulary, templates and metric are the tiny-CLIP config's; the
# input is not resized (the proxy was trained at 128 px) and the whole image is
# one window. Numbers: results/training_free_proxy.md
# (tools/analysis_tools/bench_training_free_proxy.py).
_base_ = ['./maskclip_clip-synth-rn_synthetic-128x128.py']
clip_arch = 'clipdense-synth-vit8'
clip_weights = 'work_dirs/proxy/proxy_clip.pt'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        _delete_=True,
        type='OpenCLIPViT',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(-1, ),
        pyramid=False,
        joint_outputs=('value', 'keys'),
        freeze='all'),
    decode_head=dict(
        text_encoder=dict(arch=clip_arch, pretrained=clip_weights)),
    test_cfg=dict(mode='whole'))
