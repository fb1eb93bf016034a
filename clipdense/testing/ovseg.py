"""Tiny OVSeg configs for tests (tiny open_clip archs, no weights)."""
from mmengine.config import ConfigDict

SEEN = ['cup', 'ball', 'sky']
ALL = ['cup', 'ball', 'sky', 'mug']


def head_cfg(arch='clipdense-tiny-rn', clip=True, **kw):
    """A tiny ``OVSegHead`` config (4 classes, 3 seen, 6 queries)."""
    dims = 32
    cfg = dict(
        type='OVSegHead',
        text_encoder=dict(type='OpenCLIPTextEncoder', arch=arch, pretrained=None,
                          templates='single'),
        vocabulary=ALL, train_vocabulary=SEEN,
        clip_classifier=dict(type='MaskedCropCLIP', arch=arch, pretrained=None)
        if clip else None,
        ensemble_weight=0.7 if clip else 0.0, mask_thr=0.5, class_embed_hidden=32,
        in_channels=[32, 64, 128, 256], in_index=[0, 1, 2, 3],
        feat_channels=dims, out_channels=dims, num_queries=6,
        pixel_decoder=dict(type='mmdet.PixelDecoder', norm_cfg=dict(type='GN', num_groups=8),
                           act_cfg=dict(type='ReLU')),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=dims // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True, num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=dims, num_heads=2, attn_drop=0.0,
                                   proj_drop=0.0, dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=dims, num_heads=2, attn_drop=0.0,
                                    proj_drop=0.0, dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=dims, feedforward_channels=64, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_mask=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                       reduction='mean', loss_weight=20.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=1.0),
        train_cfg=dict(
            assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=1.0),
                dict(type='mmdet.FocalLossCost', weight=20.0, binary_input=True),
                dict(type='mmdet.DiceCost', weight=1.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler')))
    cfg.update(kw)
    return cfg


def model_cfg(**kw):
    """An ``OVSeg`` segmentor on ``clipdense-tiny-rn`` (call
    ``register_tiny_models()`` first); ``kw`` go to the head."""
    return ConfigDict(
        type='OVSeg',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[122.8, 116.7, 104.1],
                               std=[68.5, 66.6, 70.3], bgr_to_rgb=True, size=(64, 64),
                               pad_val=0, seg_pad_val=255),
        backbone=dict(type='OpenCLIPResNet', arch='clipdense-tiny-rn', pretrained=None,
                      out_indices=(0, 1, 2, 3), freeze='all'),
        decode_head=head_cfg(**kw), train_cfg=dict(), test_cfg=dict(mode='whole'))
