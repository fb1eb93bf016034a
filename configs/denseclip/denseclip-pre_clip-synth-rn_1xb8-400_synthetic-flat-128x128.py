# DenseCLIP with pre-model prompting on the synthetic world: the same model
# and schedule as the post-model config, but the context decoder writes the
# text encoder's 8 context tokens from the visual context, so the text tower
# runs on B x 13 sequences every step and every image.
_base_ = ['./denseclip_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py']
model = dict(prompting='pre')
