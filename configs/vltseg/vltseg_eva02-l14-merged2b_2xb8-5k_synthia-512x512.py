# VLTSeg, SYNTHIA -> {Cityscapes, BDD100K, Mapillary}: the GTA5 recipe
# (EVA02-CLIP-L/14, 5k iterations, batch 16, 512x512 crops) on SYNTHIA.
_base_ = ['./vltseg_eva02-l14-merged2b_2xb8-5k_gta5-512x512.py']
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
