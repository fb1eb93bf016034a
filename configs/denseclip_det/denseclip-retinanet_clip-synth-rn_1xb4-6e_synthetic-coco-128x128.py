# DenseCLIP retinanet on the synthetic world (tiny CLIP ResNet, 128 px): the
# score map of the 10 thing classes / tau on C5, learnable contexts, context
# decoder, auxiliary segmentation loss. Needs data/synthetic and
# work_dirs/quickstart/tiny_clip.pt (make quickstart).
_base_ = [
    './_base_/tiny_retinanet_clip-synth-rn.py', './_base_/synthetic_coco_instance.py',
    './_base_/tiny_schedule.py'
]
model = dict(
    type='clipdense.DenseCLIPRetinaNet',
    backbone=dict(joint_outputs=('global', 'dense')),
    text_encoder=dict(
        type='clipdense.OpenCLIPContextTextEncoder',
        arch='clipdense-synth-rn',
        pretrained={{_base_.clip_weights}},
        class_context_length=5),
    context_decoder=dict(
        type='clipdense.ContextDecoder',
        width=64,
        num_heads=4,
        num_layers=3,
        dropout=0.1),
    vocabulary={{_base_.synthetic_classes}},
    num_contexts=8,
    tau=0.07,
    seg_loss=True,
    neck=dict(in_channels=[64, 128, 256, 512 + 10]))
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
