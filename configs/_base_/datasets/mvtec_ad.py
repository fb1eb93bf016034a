# MVTec AD test split for zero-shot anomaly detection (all 15 categories).
# Images and masks are resized together to the model's input size (AnoVL
# and WinCLIP evaluate at 240x240); normal images get zero masks
# (LoadAnomalyAnnotations). No training data is used: train_dataloader only
# lets the tooling parse the config.
dataset_type = 'MVTecADDataset'
data_root = 'data/mvtec_ad'
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
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline))
val_dataloader = test_dataloader
train_dataloader = test_dataloader
test_evaluator = dict(type='AnomalyMetric')
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
