# MaskCLIP (training-free, annotation-free) on the synthetic world with the
# world's tiny CLIP ResNet ("clipdense-synth-rn"). `make quickstart` trains
# that CLIP to work_dirs/quickstart/tiny_clip.pt; the same file feeds the
# image backbone and the text encoder. No pixel labels are used. Test with
#   python tools/test.py configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py none
# (`none`: no checkpoint, the weights come from `pretrained`).
#
# The text is phrased the way the tiny CLIP's captions talk about each class
# (clipdense/datasets/synthetic/captions.py): things with their article
# ("a ball"; "a scissors", as the captions write it), the stuff classes as
# the captions' background phrases ("under the sky", "on the grass", "on a
# road"), in the captions' sentence frames.
# The images are doubled (x2) before the CLIP, so that its C5 map is 8x8
# instead of 4x4; the prediction is resized back and scored at the original
# 128 px. Phrasing and input scale were chosen together on the *train* split
# (first 15 images of each style) among 5 text variants x 4 input settings
# (x1/x2/x4 whole, x2 sliding 128 px windows) by
# tools/analysis_tools/bench_maskclip.py with the tiny CLIP a fresh
# `make quickstart` trains: x2 whole with this phrasing scored best (5.82
# mIoU on those train images; x1 whole with it 4.39). Val numbers in
# results/maskclip_synthetic.md. (An older tiny CLIP, which a fresh clone
# does not reproduce, chose x1 with this phrasing.) The vocabulary entries are
# in the dataset's class order (ball, cup, ..., scissors, sky, grass, road);
# any other names can be given at run time (inference_model(...,
# vocabulary=[...]), the demo's --vocabulary).
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_seg.py',
    '../_base_/schedules/training_free.py'
]
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
vocabulary = [
    'a ball', 'a cup', 'a bottle', 'a knife', 'a hammer', 'a key', 'a mug',
    'a spoon', 'a racket', 'a scissors', 'under the sky',
    'on the grass', 'on a road'
]
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],  # the tiny CLIP was trained with CLIP's
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
# x2 before the CLIP; LoadAnnotations after the resize, so the labels keep
# the original size that mmseg resizes the prediction back to
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale_factor=2.0, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch='clipdense-synth-rn',
        pretrained=clip_weights,
        out_indices=(3, ),
        joint_outputs=('value', 'keys'),  # 'keys' for key smoothing (ks_thresh)
        freeze='all'),
    decode_head=dict(
        type='MaskCLIPHead',
        text_encoder=dict(
            type='OpenCLIPTextEncoder',
            arch='clipdense-synth-rn',
            pretrained=clip_weights,
            # the sentence frames of the world's captions
            templates=['a photo of {}.', 'a picture of {}.', 'there is {}.', '{}.']),
        vocabulary=vocabulary,
        num_classes=len(vocabulary),
        logit_scale=100.0,
        ks_thresh=0.0,  # key smoothing off, as in the paper (1.0 to try it)
        pd_thresh=0.0,  # prompt denoising, e.g. 0.5; off as in the paper
        align_corners=False),
    train_cfg=dict(),
    # the whole (doubled) image: sliding 128 px windows over it, x1 and x4
    # scored lower on the train split (results/maskclip_synthetic.md)
    test_cfg=dict(mode='whole'))

# all 13 classes, plus mIoU over the world's seen / unseen split and hIoU
# (the unseen list of data/synthetic/open_vocab_split.json)
val_evaluator = dict(
    type='OpenVocabIoUMetric',
    iou_metrics=['mIoU'],
    unseen_classes=['mug', 'scissors', 'road'])
test_evaluator = val_evaluator
