# OVSeg on the synthetic world with the world's tiny CLIP ResNet
# ("clipdense-synth-rn", work_dirs/quickstart/tiny_clip.pt from
# `make quickstart`). The MaskFormer proposal model is trained on the SEEN
# classes only (unseen mug / scissors / road pixels are ignored: the
# dataset's metainfo has the seen classes, so their labels become 255) and
# evaluated on all 13 classes with seen / unseen mIoU and hIoU.
# The CLIP branch classifies masked crops at the tiny CLIP's 128 px input
# (OVSeg: 224 for ViT-B/16 and ViT-L/14). Mask prompt tuning does not apply
# to a CLIP ResNet (no patch tokens), so clip_classifier.prompt_depth = 0.
#   python tools/train.py configs/ovseg/ovseg_clip-synth-rn_1xb4-400_synthetic-seen-128x128.py
#   python tools/test.py  configs/ovseg/ovseg_clip-synth-rn_1xb4-400_synthetic-seen-128x128.py CKPT
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_seg.py'
]
clip_arch = 'clipdense-synth-rn'
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
seen_classes = ['ball', 'cup', 'bottle', 'knife', 'hammer', 'key', 'spoon',
                'racket', 'sky', 'grass']
all_classes = ['ball', 'cup', 'bottle', 'knife', 'hammer', 'key', 'mug', 'spoon',
               'racket', 'scissors', 'sky', 'grass', 'road']
unseen_classes = ['mug', 'scissors', 'road']
# the phrasings of the world's captions (the tiny CLIP never saw ViLD's)
templates = ['a photo of a {}.', 'a picture of a {}.', 'there is a {}.']
embed_dims = 64
num_queries = 16

data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(128, 128))
model = dict(
    type='OVSeg',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(0, 1, 2, 3),
        freeze='all'),
    decode_head=dict(
        type='OVSegHead',
        text_encoder=dict(
            type='OpenCLIPTextEncoder', arch=clip_arch, pretrained=clip_weights,
            templates=templates),
        vocabulary=all_classes,
        train_vocabulary=seen_classes,
        clip_classifier=dict(
            type='MaskedCropCLIP', arch=clip_arch, pretrained=clip_weights,
            prompt_depth=0),
        ensemble_weight=0.7,  # OVSeg's ADE value; see the README
        mask_thr=0.5,
        class_embed_hidden=128,
        in_channels=[64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        feat_channels=embed_dims,
        out_channels=embed_dims,
        num_queries=num_queries,
        pixel_decoder=dict(
            type='mmdet.PixelDecoder',
            norm_cfg=dict(type='GN', num_groups=16),
            act_cfg=dict(type='ReLU')),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=embed_dims // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4, attn_drop=0.0,
                                   proj_drop=0.0, dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=4, attn_drop=0.0,
                                    proj_drop=0.0, dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims,
                             num_fcs=2, act_cfg=dict(type='ReLU', inplace=True),
                             ffn_drop=0.0, dropout_layer=None, add_identity=True)),
            init_cfg=None),
        no_object_weight=0.1,
        loss_mask=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                       reduction='mean', loss_weight=20.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=1.0),
        train_cfg=dict(
            assigner=dict(
                type='mmdet.HungarianAssigner',
                match_costs=[
                    dict(type='mmdet.ClassificationCost', weight=1.0),
                    dict(type='mmdet.FocalLossCost', weight=20.0, binary_input=True),
                    dict(type='mmdet.DiceCost', weight=1.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='mmdet.MaskPseudoSampler')),
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# train on the seen classes: labels index `seen_classes`, unseen -> 255
train_dataloader = dict(batch_size=4, dataset=dict(metainfo=dict(classes=seen_classes)))

max_iters = 400
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'null_embed': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=0.1, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0, power=0.9, begin=50, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
val_evaluator = dict(
    type='OpenVocabIoUMetric', iou_metrics=['mIoU'], unseen_classes=unseen_classes)
test_evaluator = val_evaluator
