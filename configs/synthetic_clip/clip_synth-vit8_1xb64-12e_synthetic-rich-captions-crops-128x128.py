# A candidate for the proxy CLIP (issue #25, fourth round; not the shipped
# proxy unless results/proxy_clip_selection_crops.md says it was adopted):
# the shipped recipe and ViT (class-token pool, as the real CLIP ViTs that
# MaskCLIP was written for) with the object crops of the token-average
# candidate (ObjectCropCaption: a quarter of the scene and parts images
# cropped to one object, 15% margin, captioned with its noun). Needs the
# rich-caption corpus of version 2 or later (records with boxes).
_base_ = ['./clip_synth-vit8avg_1xb64-12e_synthetic-rich-captions-crops-128x128.py']
model = dict(model_name='clipdense-synth-vit8')
