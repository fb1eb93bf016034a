# AffordanceCLIP at toy scale on the synthetic world with the proxy CLIP ViT
# (issue #25; "clipdense-synth-vit8": open_clip ViT, width 96, 4 blocks,
# patch 8 -> 16x16 tokens at 128 px, embed 128; `make proxy-clip` writes
# work_dirs/proxy/proxy_clip.pt, the same file feeds both towers). Its
# captions name parts and what they afford ("the part to cut with is the
# blade"), which the tiny CLIP's never do.
#
# The ViT variant is ours: the paper uses ResNet CLIPs (RN101, RN50) and a
# light FPN over their stages. A plain ViT has one stride, so the "levels"
# here are the tokens after blocks 1, 2 and 3 (all 16x16, stride 8: the
# finest stride of the ResNet config's C3-C5), fused top-down by the same
# head; no pyramid on the backbone (`pyramid=False`: a SimpleFeaturePyramid
# would be new, randomly initialised layers inside the frozen tower).
# Everything else (data, head, loss, schedule) is the tiny-CLIP ResNet
# config's. `tools/analysis_tools/bench_affordance.py --clip proxy` runs it
# against the untrained frozen-CLIP similarity maps
# (results/affordance_proxy.md).
_base_ = ['./affordanceclip_clip-synth-rn_1xb16-1k_synthetic-refer-128x128.py']
clip_arch = 'clipdense-synth-vit8'
clip_weights = 'work_dirs/proxy/proxy_clip.pt'
model = dict(
    backbone=dict(
        _delete_=True,
        type='OpenCLIPViT',
        arch=clip_arch,
        pretrained=clip_weights,
        out_indices=(1, 2, 3),  # three taps at stride 8, finest first
        pyramid=False,
        joint_outputs=('global', 'dense', 'value'),
        freeze='all'),
    text_encoder=dict(arch=clip_arch, pretrained=clip_weights))
work_dir = 'work_dirs/affordance_proxy'
