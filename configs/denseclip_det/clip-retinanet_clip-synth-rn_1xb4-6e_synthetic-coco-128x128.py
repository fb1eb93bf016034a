# CLIP baseline retinanet on the synthetic world (tiny CLIP ResNet, 128 px):
# the reference for denseclip-retinanet_clip-synth-rn_1xb4-6e_synthetic-coco-128x128.py.
# Needs data/synthetic and work_dirs/quickstart/tiny_clip.pt (make quickstart).
_base_ = [
    './_base_/tiny_retinanet_clip-synth-rn.py', './_base_/synthetic_coco_instance.py',
    './_base_/tiny_schedule.py'
]
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
