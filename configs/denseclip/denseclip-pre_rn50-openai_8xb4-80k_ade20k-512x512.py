# DenseCLIP RN50 with pre-model prompting (paper Sec. 3.3): the context
# decoder turns 8 learnable queries and the visual context into the text
# encoder's context tokens, so the text tower runs for every image (150
# sequences per image on ADE20K), in training and at inference.
_base_ = ['./denseclip_rn50-openai_8xb4-80k_ade20k-512x512.py']
model = dict(prompting='pre')
