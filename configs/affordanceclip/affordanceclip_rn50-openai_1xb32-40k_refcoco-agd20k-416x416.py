# AffordanceCLIP with OpenAI CLIP RN50 (the paper's tower is RN101; RN50 is
# the lighter variant of the same recipe).
_base_ = ['./affordanceclip_rn101-openai_1xb32-40k_refcoco-agd20k-416x416.py']
clip_arch = 'RN50'
model = dict(
    backbone=dict(arch=clip_arch), text_encoder=dict(arch=clip_arch))
