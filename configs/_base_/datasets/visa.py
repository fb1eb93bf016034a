# VisA test split (12 objects) through the release's split_csv/1cls.csv
# (object,split,label,image,mask). Images are resized to the model's input
# size (AnoVL's vis_test.py instead resizes the short side to 240 and
# averages two overlapping 240x240 tiles; not reproduced here).
dataset_type = 'VisADataset'
data_root = 'data/visa'
img_size = 240
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnomalyAnnotations'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='PackAnomalyInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 split_csv='split_csv/1cls.csv', split='test',
                 pipeline=test_pipeline))
val_dataloader = test_dataloader
train_dataloader = test_dataloader
# VisA images are large: keep the stored maps at 240x240
test_evaluator = dict(type='AnomalyMetric', map_size=240)
val_evaluator = test_evaluator
# test-only configs: the hooks tools/test.py expects (--show-dir switches on
# the visualization hook; the configs use AnomalyLocalVisualizer heat maps)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='RunnerSegVisualizationHook', interval=1))
