# The proxy CLIP of the synthetic world (issue #25; `make proxy-clip`,
# clipdense/apis/proxy_clip.py PROXY_CONFIG), fourth recipe, candidate G:
# trained once (seed 0) after the fifth candidate (F) had been adopted and
# every bench rerun on it, then adopted by the dense rule against F
# (results/proxy_clip_selection_regiontokens.md: dense 22.4 vs 5.1). It
# is F's object-token loss
# (clip_synth-vit8_1xb64-12e_synthetic-rich-captions-objtokens-128x128.py)
# on every class of the image's label map instead of the objects' boxes,
# stuff included: the value-path tokens (MaskCLIP's dense read-out),
# weighted by the share of their patch each class covers, must pick that
# class's name among the batch's. Chosen after seeing the fifth candidate's
# epoch-5 checkpoint on the flat world's train split: its value path named
# the objects better but put object names on the sky, grass and road that
# cover 93% of those pixels, which no box loss can teach. Weight 1 and the
# value path as in the fifth candidate. Needs the rich-caption corpus of
# version 3 (label maps; `make proxy-clip` or generate_rich_captions
# rebuilds it).
_base_ = ['./clip_synth-vit8_1xb64-12e_synthetic-rich-captions-128x128.py']
model = dict(object_loss_weight=1.0, object_features='value')
# spec.CLASSES of the synthetic world, by label index
world_classes = ('ball', 'cup', 'bottle', 'knife', 'hammer', 'key', 'mug',
                 'spoon', 'racket', 'scissors', 'sky', 'grass', 'road')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCaptionSegMap'),
    dict(type='Resize', scale=(128, 128), keep_ratio=False),
    dict(type='NounCaption', prob=0.5),
    dict(type='PackCaptionInputs', with_masks=True, classes=world_classes),
]
train_dataloader = dict(
    dataset=dict(keep_fields=('kind', 'objects', 'classes', 'seg_map'),
                 pipeline=train_pipeline))
