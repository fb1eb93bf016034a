# VLTSeg's optimisation (the unofficial mmseg reimplementation's
# schedule_5k/20k): AdamW lr 1e-4, wd 0.05, backbone lr x0.1, grad-clip
# max-norm 0.01, no weight decay on norms, positional tables, queries and
# level embeddings; poly LR (power 0.9) from iter 500 (constant before).
# Leaf configs set `max_iters` via train_cfg / param_scheduler.
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
backbone_no_decay = dict(lr_mult=0.1, decay_mult=0.0)
# MMEngine applies the *longest* matching key and then skips its norm rule,
# so the backbone's norms and tables need keys longer than 'backbone' to get
# both lr x0.1 and no decay: open_clip ViT names, then timm EVA names.
_no_decay_keys = [
    'visual.class_embedding', 'visual.positional_embedding',
    'visual.ln_pre.weight', 'visual.ln_pre.bias', '.ln_1.weight',
    '.ln_1.bias', '.ln_2.weight', '.ln_2.bias', 'trunk.pos_embed',
    'trunk.cls_token', '.norm1.weight', '.norm1.bias', '.norm2.weight',
    '.norm2.bias', 'attn.norm.weight', 'attn.norm.bias', 'mlp.norm.weight',
    'mlp.norm.bias', 'pyramid.fpn1.1.weight', 'pyramid.fpn1.1.bias',
    # CLIP ResNets: BN layers of the stem, the bottlenecks, the downsamples
    '.bn1.weight', '.bn1.bias', '.bn2.weight', '.bn2.bias', '.bn3.weight',
    '.bn3.bias', 'downsample.2.weight', 'downsample.2.bias'
]
custom_keys = dict.fromkeys(_no_decay_keys, backbone_no_decay)
custom_keys.update({
    'backbone': dict(lr_mult=0.1, decay_mult=1.0),
    'query_embed': embed_multi,
    'query_feat': embed_multi,
    'level_embed': embed_multi,
})
optimizer = dict(
    type='AdamW', lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys=custom_keys, norm_decay_mult=0.0))
max_iters = 5000
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=500, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000,
                    max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
