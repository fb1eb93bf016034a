# OVSeg (Liang et al., CVPR 2023), the paper's strongest model: a MaskFormer
# on Swin-B (IN-22K, 384, window 12, drop path 0.3) proposes 100 masks whose
# queries are classified by cosine with CLIP ViT-L/14 text embeddings (ViLD's
# 14 templates) plus a learnt no-object embedding; at test time CLIP ViT-L/14
# classifies each masked crop (threshold 0.4, tight box, CLIP-mean fill,
# 224 px squash, mask prompts of depth 3) and the two are combined as
# p = p_mf^(1-lambda) * p_clip^lambda.
# For the adapted CLIP of the paper, point clip_classifier.pretrained at the
# fine-tuned open_clip file and prompt_weights at the learnt prompts
# (tools/analysis_tools/bench_ovseg.py shows the whole loop on the synthetic
# world; `MaskAdaptedCLIP` / `MaskPromptCLIP` train them).
clip_arch = 'ViT-L-14'
clip_pretrained = 'openai'
embed_dims = 256
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(640, 640))
model = dict(
    type='OVSeg',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='SwinTransformer',
        pretrain_img_size=384,
        embed_dims=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        window_size=12,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.3,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/'
            'swin/swin_base_patch4_window12_384_22k_20220317-e5c09f74.pth')),
    decode_head=dict(
        type='OVSegHead',
        # split_synonyms=False: a name with commas ("road, route") is one
        # prompt string, as the authors do (True averages the synonyms)
        text_encoder=dict(type='OpenCLIPTextEncoder', arch=clip_arch,
                          pretrained=clip_pretrained, templates='vild',
                          split_synonyms=False),
        train_vocabulary=None,  # set by the training config
        clip_classifier=dict(type='MaskedCropCLIP', arch=clip_arch,
                             pretrained=clip_pretrained, image_size=224,
                             prompt_depth=3, prompt_weights=None),
        ensemble_weight=0.7,
        mask_thr=0.4,
        logit_scale=100.0,
        clip_logit_scale=100.0,
        class_embed_hidden=1024,
        in_channels=[128, 256, 512, 1024],
        in_index=[0, 1, 2, 3],
        feat_channels=embed_dims,
        out_channels=embed_dims,
        num_queries=100,
        pixel_decoder=dict(
            type='mmdet.PixelDecoder',
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU')),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=embed_dims // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=6,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.1,
                                   proj_drop=0.1, dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.1,
                                    proj_drop=0.1, dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2048, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.1,
                             dropout_layer=None, add_identity=True)),
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
