# A candidate for the proxy CLIP (issue #25, fourth round; not the shipped
# proxy unless results/proxy_clip_selection_dense.md says it was adopted):
# the shipped recipe on the token-average ViT ("clipdense-synth-vit8-avg")
# with object crops: a quarter of the scene and parts images are cropped to
# one object (ObjectCropCaption: the square around its box, 15% margin) and
# captioned with its noun alone. The aim is dense tokens that live in the
# joint space (a crop the object fills puts its noun on almost every
# token); the third round showed that the average pool alone does not get
# there in 12 epochs. Needs the rich-caption corpus of version 2 or later (records
# with boxes; `make proxy-clip` or generate_rich_captions rebuilds it).
_base_ = ['./clip_synth-vit8_1xb64-12e_synthetic-rich-captions-128x128.py']
model = dict(model_name='clipdense-synth-vit8-avg')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ObjectCropCaption', prob=0.25, margin=0.15, min_size=12),
    dict(type='Resize', scale=(128, 128), keep_ratio=False),
    dict(type='NounCaption', prob=0.5),
    dict(type='PackCaptionInputs'),
]
train_dataloader = dict(
    dataset=dict(keep_fields=('kind', 'objects', 'classes', 'boxes'),
                 pipeline=train_pipeline))
