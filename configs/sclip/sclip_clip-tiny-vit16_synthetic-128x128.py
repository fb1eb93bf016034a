# SCLIP on the synthetic world, end to end (training-free, `none` checkpoint):
#   python tools/test.py configs/sclip/sclip_clip-tiny-vit16_synthetic-128x128.py none
#   python demo/image_demo.py IMAGE configs/sclip/sclip_clip-tiny-vit16_synthetic-128x128.py
# The world's data, vocabulary, templates and metric are MaskCLIP's synthetic
# config's. SCLIP's last-block path exists for ViTs only, and no CLIP ViT has been
# trained on the synthetic world yet (its tiny CLIP, `make quickstart`, is a
# ResNet): this config runs the tiny *untrained* test ViT 'clipdense-tiny-vit16'
# (clipdense.testing), so it checks the whole path, not accuracy; its mIoU is
# chance level and is not reported. Point `clip_arch` / `clip_weights` at a
# ViT CLIP trained on the world (configs/synthetic_clip with a ViT arch) for a
# real synthetic row.
_base_ = ['../maskclip/maskclip_clip-synth-rn_synthetic-128x128.py']
custom_imports = dict(imports=['clipdense.testing.tiny_archs'], allow_failed_imports=False)
clip_arch = 'clipdense-tiny-vit16'
clip_weights = None
# the images at their own size (MaskCLIP's synthetic config doubles them for
# the tiny CLIP ResNet's 4x4 C5 map; this ViT has its own window below)
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
        joint_outputs=('sclip', ),
        freeze='all'),
    decode_head=dict(
        text_encoder=dict(arch=clip_arch, pretrained=clip_weights),
        value_key='sclip'),
    # the tiny ViT was built for 64 px: the authors' sliding window, scaled
    test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(32, 32)))
