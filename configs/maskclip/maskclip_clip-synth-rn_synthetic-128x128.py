# MaskCLIP (training-free, annotation-free) on the synthetic world with the
# world's tiny CLIP ResNet ("clipdense-synth-rn"). `make quickstart` trains
# that CLIP to work_dirs/quickstart/tiny_clip.pt; the same file feeds the
# image backbone and the text encoder. No pixel labels are used: the 13
# class names are the vocabulary. Test with
#   python tools/test.py configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py
# (no checkpoint needed: the weights come from `pretrained`).
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_seg.py'
]
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
vocabulary = ['ball', 'cup', 'bottle', 'knife', 'hammer', 'key', 'mug', 'spoon',
              'racket', 'scissors', 'sky', 'grass', 'road']
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],  # the tiny CLIP was trained with CLIP's
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch='clipdense-synth-rn',
        pretrained=clip_weights,
        out_indices=(3, ),
        joint_outputs=('value', ),
        freeze='all'),
    decode_head=dict(
        type='MaskCLIPHead',
        text_encoder=dict(
            type='OpenCLIPTextEncoder',
            arch='clipdense-synth-rn',
            pretrained=clip_weights,
            # the phrasings of the world's captions
            templates=['a photo of a {}.', 'a picture of a {}.', 'there is a {}.']),
        vocabulary=vocabulary,
        num_classes=len(vocabulary),
        logit_scale=100.0,
        ks_thresh=0.0,  # key smoothing needs a ViT ('keys'); off as in the paper
        pd_thresh=0.0,  # prompt denoising, e.g. 0.5; off as in the paper
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# MaskCLIP is training-free (MaskCLIPHead.loss raises). These keys exist only
# so that the usual tooling can parse the config.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.0))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=0, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# all 13 classes, plus mIoU over the world's seen / unseen split and hIoU
# (the unseen list of data/synthetic/open_vocab_split.json)
val_evaluator = dict(
    type='OpenVocabIoUMetric',
    iou_metrics=['mIoU'],
    unseen_classes=['mug', 'scissors', 'road'])
test_evaluator = val_evaluator
