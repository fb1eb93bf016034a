# A short schedule for the synthetic world on a CPU: DenseCLIP's recipe
# (AdamW, wd 1e-4, backbone lr x0.1, text tower frozen (lr x0), contexts
# at the full lr, no decay on norms, step decay) with a higher lr (2e-3) and
# gradient clipping at 5, since the heads start from scratch and train for
# minutes (at DenseCLIP's lr 1e-4-2e-4 and clipping at 0.1 nothing is
# detected after a few epochs).
_base_ = ['../../_base_/default_runtime_det.py']
max_epochs = 6
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs - 1], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.1),
        'text_encoder': dict(lr_mult=0.0),
        'norm': dict(decay_mult=0.)
    }),
    clip_grad=dict(max_norm=5.0, norm_type=2))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='clipdense.CheckpointHook', interval=1,
                    max_keep_ckpts=-1))
randomness = dict(seed=0)
