# SYNTHIA (RAND-CITYSCAPES) -> {Cityscapes, BDD100K, Mapillary}: as GTA5,
# images resized to 1280x760 before the 512x512 crops.
_base_ = ['./dg_gta5_512x512.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='SynthiaDataset',
        data_root='data/synthia',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='Resize', scale=(1280, 760), keep_ratio=True),
            dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PhotoMetricDistortion'),
            dict(type='PackSegInputs'),
        ]))
dg_source = 'synthia'
