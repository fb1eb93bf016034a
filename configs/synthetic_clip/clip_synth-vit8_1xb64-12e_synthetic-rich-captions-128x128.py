# The second proxy CLIP's recipe (issue #25; the shipped proxy is now
# clip_synth-vit8_1xb64-12e_synthetic-rich-captions-regiontokens-128x128.py,
# this recipe plus a region-token loss): an open_clip
# VisionTransformer with 8 px patches ("clipdense-synth-vit8",
# clipdense/models/model_configs: width 96, 4 layers, a 16x16 token grid at
# 128 px, against the tiny CLIP ResNet's 4x4 C5 map), trained from scratch
# with the CLIP contrastive loss on the rich-caption corpus
# (clipdense/datasets/synthetic/rich_captions.py: scenes with relations,
# colours, places and stuff; object parts and what they afford; states of
# the anomaly categories). `make proxy-clip` writes the corpus to
# data/synthetic_rich and the weights in open_clip's format to
# work_dirs/proxy/proxy_clip.pt (built once and cached).
# The quickstart's tiny CLIP (clip_synth-rn_...) is unchanged.
#
# Schedule: 12 epochs of the 10000-image corpus = 1884 iterations, about
# 30 minutes on 2 idle CPU cores (0.8-1.0 s/iter at batch 64). The first
# run had 4 epochs and its loss was still falling by 18% in the last epoch
# (results/proxy_clip.md keeps that curve's successor); 12 epochs were
# chosen on the training loss alone, before any ablation was rerun on it.
#
# Noun-only captions (NounCaption, prob 0.5; the anomaly corpus keeps its
# state captions): the first proxy, trained on the full captions only, read
# colour and state words but barely object nouns (a batch of rich captions
# is told apart by colours and states alone). Chosen on the word test and
# zero-shot accuracy before any ablation was rerun; see the README.
_base_ = ['./clip_synth-rn_1xb64-30e_synthetic-captions-128x128.py']
data_root = 'data/synthetic_rich'
model = dict(model_name='clipdense-synth-vit8', channels_last=False)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=False),
    dict(type='NounCaption', prob=0.5),
    dict(type='PackCaptionInputs'),
]
train_dataloader = dict(
    batch_size=64,
    dataset=dict(data_root=data_root, ann_file='clip_train.jsonl',
                 keep_fields=('kind', 'objects', 'classes'),
                 pipeline=train_pipeline))
max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# ViTs from scratch want a lower peak rate than the small ResNet
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
optim_wrapper.update(paramwise_cfg=dict(
    norm_decay_mult=0.0, bias_decay_mult=0.0,
    custom_keys={'logit_scale': dict(decay_mult=0.0),
                 'positional_embedding': dict(decay_mult=0.0),
                 'class_embedding': dict(decay_mult=0.0),
                 'token_embedding': dict(decay_mult=0.0)}))
