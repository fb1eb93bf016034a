# WinCLIP zero-shot on the synthetic world's MVTec-format tree with the
# tiny CLIP ResNet: window embeddings are the attention pool restricted to
# the window's positions (a ResNet cannot drop tokens as a ViT does).
#   python tools/test.py configs/winclip/winclip_clip-synth-rn_synthetic-mvtec-128x128.py none
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_mvtec.py',
    '../_base_/schedules/training_free.py'
]
clip_arch = 'clipdense-synth-rn'
clip_weights = 'work_dirs/quickstart/tiny_clip.pt'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0)
model = dict(
    type='WinCLIPDetector',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='OpenCLIPResNet',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(3, ),
        joint_outputs=('global', ),
        freeze='all'),
    text_encoder=dict(
        type='AnomalyPromptEncoder',
        arch=clip_arch,
        pretrained=clip_weights,
        style='winclip'),
    window_sizes=(2, 3),
    temperature=0.07,
    include_image=True)
visualizer = dict(type='AnomalyLocalVisualizer', _scope_='clipdense')
