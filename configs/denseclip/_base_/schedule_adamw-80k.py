# DenseCLIP's ADE20K schedule: AdamW lr 1e-4, weight decay 1e-4; image
# backbone at 0.1x, text encoder at 0x (frozen; its tower also has
# requires_grad=False), no weight decay on parameters named *norm*; linear warm-up over
# 1500 iterations from 1e-6x, then poly (power 0.9, min 1e-6); 80k
# iterations, evaluation and checkpoints every 8k.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'text_encoder': dict(lr_mult=0.0),
            # as the authors: no decay for parameters whose name contains
            # "norm" (clipdense's `norm_decay_mult=0.0`, every norm layer
            # outside the keys above, is off in the paper recipe)
            'norm': dict(decay_mult=0.0),
        }))
max_iters = 80000
warmup_iters = 1500
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False,
         begin=warmup_iters, end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000,
                    max_keep_ckpts=3))
