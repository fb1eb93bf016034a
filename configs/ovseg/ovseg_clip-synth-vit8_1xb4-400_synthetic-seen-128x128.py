# OVSeg on the synthetic world with the proxy CLIP ViT (issue #25;
# "clipdense-synth-vit8": patch 8, 16x16 tokens at 128 px,
# work_dirs/proxy/proxy_clip.pt from `make proxy-clip`) as the CLIP of the
# method: the text tower that names the MaskFormer classes and the CLIP that
# classifies the masked crops. As in OVSeg, whose proposal generator's
# backbone (Swin-B / R101c, ImageNet-pretrained) is a network separate from
# the CLIP classifier (ViT-B/16 / ViT-L/14), the proposal backbone stays the
# one of the tiny-CLIP config (the frozen tiny CLIP ResNet image tower,
# work_dirs/quickstart/tiny_clip.pt). Everything else (seen / unseen split,
# templates, queries, losses, schedule, lambda 0.7, mask threshold) is the
# tiny-CLIP config's, fixed before any run on the proxy. The proxy is a ViT,
# so OVSeg's mask prompt tuning applies: the benchmark
# (tools/analysis_tools/bench_ovseg.py --clip proxy) learns prompts of depth 3
# (the paper's) and plugs them in with clip_classifier.prompt_depth=3 and
# prompt_weights=...; this config's CLIP branch is the vanilla proxy.
#   python tools/train.py configs/ovseg/ovseg_clip-synth-vit8_1xb4-400_synthetic-seen-128x128.py
#   python tools/test.py  configs/ovseg/ovseg_clip-synth-vit8_1xb4-400_synthetic-seen-128x128.py CKPT
_base_ = ['./ovseg_clip-synth-rn_1xb4-400_synthetic-seen-128x128.py']
proposal_arch = 'clipdense-synth-rn'
proposal_weights = 'work_dirs/quickstart/tiny_clip.pt'
clip_arch = 'clipdense-synth-vit8'
clip_weights = 'work_dirs/proxy/proxy_clip.pt'
model = dict(
    backbone=dict(arch=proposal_arch, pretrained=proposal_weights),
    decode_head=dict(
        text_encoder=dict(arch=clip_arch, pretrained=clip_weights),
        clip_classifier=dict(arch=clip_arch, pretrained=clip_weights, prompt_depth=0)))
