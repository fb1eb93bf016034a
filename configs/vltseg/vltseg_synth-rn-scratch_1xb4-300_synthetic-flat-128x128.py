# The baseline of vltseg_clip-synth-rn_1xb4-300_synthetic-flat-128x128.py:
# the same backbone ('clipdense-synth-rn' ResNet) from random
# initialisation (open_clip's init), same head, data and schedule.
_base_ = ['./vltseg_clip-synth-rn_1xb4-300_synthetic-flat-128x128.py']
model = dict(backbone=dict(pretrained=None))
