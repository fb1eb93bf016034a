# AffordanceCLIP's data (Cuttano et al., CVPR 2024 Workshop): train on
# RefCOCO referring segmentation (no affordance labels), test zero-shot on
# the AGD20K test split (Luo et al., CVPR 2022).
#
# RefCOCO: the `refer` toolkit's layout with the refs pickle dumped to JSON
# once (RefSegDataset reads JSON):
#   data/refer/refcoco/instances.json
#   data/refer/refcoco/refs(unc).json  <- json.dump(pickle.load(open('refs(unc).p', 'rb')))
#   data/refer/images/train2014/COCO_train2014_*.jpg
# AGD20K (https://github.com/lhc1224/Cross-View-AG):
#   data/AGD20K/{Seen,Unseen}/testset/{egocentric,GT}/<action>/<object>/...
# Image size: the paper's is not public; 416 is CRIS's (the pixel-text
# referring model methods.md 4.2 relates the design to), letterboxed
# (keep ratio, padded to 416x416 by the data preprocessor; padded mask pixels
# are ignored).
img_scale = (416, 416)
meta_keys = ('img_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
             'flip', 'flip_direction', 'text')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReferringMask'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # no flips (expressions say "left"/"right") and no colour jitter
    # (they say "red")
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAffordanceHeatmap'),
    dict(type='PackSegInputs', meta_keys=meta_keys + ('action', 'object')),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='RefSegDataset',
        data_root='data/refer',
        dataset='refcoco',
        refs_file='refs(unc).json',
        split='train',
        img_dir='images/train2014',
        per_sentence=True,
        pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='AGD20KDataset',
        data_root='data/AGD20K',
        split='Seen',  # 'Unseen' for the unseen-object split
        pipeline=test_pipeline))
test_evaluator = dict(type='AffordanceMetric', per_action=False)
