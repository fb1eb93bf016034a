# The baseline of vltseg_clip-synth-vit8_1xb4-150_synthetic-flat-128x128.py:
# the same ViT ('clipdense-synth-vit8') from random initialisation
# (open_clip's init), same head, data and schedule.
_base_ = ['./vltseg_clip-synth-vit8_1xb4-150_synthetic-flat-128x128.py']
model = dict(backbone=dict(pretrained=None))
