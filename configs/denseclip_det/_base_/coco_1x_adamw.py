# DenseCLIP's COCO 1x recipe (the authors' detection configs): AdamW,
# weight decay 1e-4, backbone lr x0.1, CLIP text tower frozen (lr x0; the
# learnable contexts belong to the detector and keep the full lr), no decay
# on norms, gradient clipping at 0.1, 500 linear
# warm-up iterations, lr x0.1 after epochs 8 and 11, 12 epochs; batch 16
# (8 GPUs x 2). The base lr (1e-4 RetinaNet, 2e-4 Mask R-CNN) is set by
# each config.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.1),
        'text_encoder': dict(lr_mult=0.0),
        'norm': dict(decay_mult=0.)
    }),
    clip_grad=dict(max_norm=0.1, norm_type=2))
# schedule_1x: LinearLR(start_factor=0.001, 500 iters) + MultiStepLR([8, 11]),
# EpochBasedTrainLoop(max_epochs=12, val_interval=1), auto_scale_lr base 16.
