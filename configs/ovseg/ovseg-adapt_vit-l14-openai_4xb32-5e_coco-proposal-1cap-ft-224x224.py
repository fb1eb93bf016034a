# OVSeg CLIP adaptation, step 1 (Liang et al., CVPR 2023, Sec. 3.2): fine-tune
# the image tower of OpenAI CLIP ViT-L/14 on the (masked proposal, noun) pairs
# mined from COCO Captions (1 caption per image, 442,117 pairs), text tower
# frozen, OpenAI's plain CLIP loss. The authors' recipe
# (open_clip_training/src/scripts/coco_proposal_1cap_finetune_VitL.sh and
# training/main.py): 4 GPUs x 32, 5 epochs, AdamW lr 5e-6 (0.9, 0.98, eps 1e-6),
# weight decay 0.2 except norms, biases, other 1-D parameters and the logit
# scale, 100 warm-up steps then cosine to 0, AMP (fp16, dynamic loss scale), no
# gradient clipping, RandomResizedCrop(scale 0.9-1, bicubic), last incomplete
# batch dropped, logit scale clamped to [0, ln 100].
# Data: data/ovseg_mined/pairs.jsonl ({"image", "caption"} per line, crops
# stored losslessly with background (124, 116, 103)), e.g. from
# clipdense.apis.ovseg_mining.mine_mask_noun_pairs. The same config in Python:
# clipdense.models.pretraining.mask_adapted_clip_config (a test checks they agree).
#   tools/dist_train.sh configs/ovseg/ovseg-adapt_vit-l14-openai_4xb32-5e_coco-proposal-1cap-ft-224x224.py 4
# Export for MaskedCropCLIP(pretrained=...): clipdense.models.pretraining.export_open_clip_state_dict.
default_scope = 'clipdense'
num_samples = 442117  # mined pairs (the authors' coco_proposal_1cap.csv)
num_gpus = 4
batch_size = 32  # per GPU
max_epochs = 5
warmup_iters = 100
total_iters = num_samples // (num_gpus * batch_size) * max_epochs  # 17270
work_dir = 'work_dirs/ovseg/adapt_ft_vit-l14'
model = dict(
    type='MaskAdaptedCLIP',
    model_name='ViT-L-14-quickgelu',  # --force-quick-gelu with OpenAI weights
    pretrained=None,  # an open_clip state dict of OpenAI ViT-L/14 (safe format)
    dedup_nouns=False,
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True))
train_dataloader = dict(
    batch_size=batch_size, num_workers=4, persistent_workers=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='CaptionDataset', data_root='data/ovseg_mined', ann_file='pairs.jsonl',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='CLIPRandomResizedCrop', size=224, scale=(0.9, 1.0),
                 interpolation='bicubic'),
            dict(type='PackCaptionInputs')
        ]))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-6, weight_decay=0.2, betas=(0.9, 0.98), eps=1e-6),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'logit_scale': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / warmup_iters, end_factor=1.0, by_epoch=False,
         begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=total_iters - warmup_iters, eta_min=0.0,
         by_epoch=False, begin=warmup_iters, end=total_iters)
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=5),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
log_level = 'INFO'
load_from = None
resume = False
