# SCLIP on the synthetic world with the proxy CLIP ViT (`make proxy-clip`,
# results/proxy_clip.md), training-free (`none` checkpoint):
#   python tools/test.py configs/sclip/sclip_clip-synth-vit8_synthetic-128x128.py none
# Everything but the last block's attention path is MaskCLIP's proxy config.
# Numbers: results/training_free_proxy.md
# (tools/analysis_tools/bench_training_free_proxy.py).
_base_ = ['../maskclip/maskclip_clip-synth-vit8_synthetic-128x128.py']
model = dict(
    backbone=dict(joint_outputs=('sclip', )),
    decode_head=dict(value_key='sclip'))
