# The synthetic world's tiny CLIP: an open_clip ModifiedResNet ("clipdense-
# synth-rn", clipdense/models/model_configs) trained from scratch with the
# CLIP contrastive loss on the world's captions. `make quickstart` runs it
# and exports the weights in open_clip's format
# (tools/model_converters/mm2openclip.py) for every `pretrained=` argument.
default_scope = 'clipdense'
data_root = 'data/synthetic'
img_size = 128
clip_mean = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
clip_std = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]

model = dict(
    type='ContrastiveCLIP',
    model_name='clipdense-synth-rn',
    # bf16 where the CPU/GPU has it natively (1.5x faster here), and
    # channels-last convolutions: together 10 instead of 15 minutes on 2 cores
    autocast_dtype='auto',
    channels_last=True,
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=clip_mean,
        std=clip_std,
        bgr_to_rgb=True))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='PackCaptionInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='CaptionDataset',
        data_root=data_root,
        ann_file='captions/clip_train.jsonl',
        pipeline=train_pipeline))

max_epochs = 30
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05, betas=(0.9, 0.98),
                   eps=1e-6),
    # no decay on gains/biases/embeddings/logit scale, as in CLIP
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'logit_scale': dict(decay_mult=0.0),
                                    'positional_embedding': dict(decay_mult=0.0),
                                    'token_embedding': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
