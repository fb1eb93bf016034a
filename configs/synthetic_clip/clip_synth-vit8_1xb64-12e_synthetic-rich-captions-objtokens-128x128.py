# The third proxy CLIP's recipe (issue #25, candidate F, adopted by the
# dense rule in results/proxy_clip_selection_objtokens.md; its benches are
# archived in results/proxy_v3; the shipped proxy is now candidate G,
# clip_synth-vit8_1xb64-12e_synthetic-rich-captions-regiontokens-128x128.py):
# the second proxy's recipe and ViT (class-token pool; the base config)
# with an object-token loss beside CLIP's (ContrastiveCLIP(object_loss_weight=1)):
# the last block's value-path tokens (MaskCLIP's dense read-out) inside each
# object's box are averaged and must pick that object's noun among the
# batch's nouns. The third and fourth rounds found that nothing in a
# whole-image loss reaches the class-token ViT's dense tokens (crops
# included); this loss reaches them directly. Weight 1 and the value path
# were fixed before training. Needs the rich-caption corpus of version 2
# or later (records with boxes; `make proxy-clip` or
# generate_rich_captions rebuilds it).
_base_ = ['./clip_synth-vit8_1xb64-12e_synthetic-rich-captions-128x128.py']
model = dict(object_loss_weight=1.0, object_features='value')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=False),
    dict(type='NounCaption', prob=0.5),
    dict(type='PackCaptionInputs', with_boxes=True),
]
train_dataloader = dict(
    dataset=dict(keep_fields=('kind', 'objects', 'classes', 'boxes'),
                 pipeline=train_pipeline))
