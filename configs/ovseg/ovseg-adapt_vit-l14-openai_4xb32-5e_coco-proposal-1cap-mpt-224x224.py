# OVSeg CLIP adaptation, step 2 (Liang et al., CVPR 2023, Sec. 3.3): mask
# prompt tuning (depth 3) on the fine-tuned CLIP of step 1
# (ovseg-adapt_..._ft-224x224.py), every CLIP weight frozen. The authors'
# recipe (open_clip_training/src/scripts/coco_proposal_1cap_mask_prompt_tuning_VitL.sh):
# as step 1 but lr 0.05 (the paper says 2e-2) and weight decay 0 on the
# prompts, which start from N(0, 0.02). The mask of each crop is recovered
# from its (124, 116, 103) background (the authors' Maskget).
# Save the prompts for MaskedCropCLIP(prompt_weights=...) with
# MaskPromptCLIP.prompt_state().
_base_ = ['./ovseg-adapt_vit-l14-openai_4xb32-5e_coco-proposal-1cap-ft-224x224.py']
work_dir = 'work_dirs/ovseg/adapt_mpt_vit-l14'
model = dict(
    _delete_=True,
    type='MaskPromptCLIP',
    model_name='ViT-L-14-quickgelu',
    pretrained=None,  # the fine-tuned CLIP of step 1 (open_clip state dict)
    prompt_depth=3,
    prompt_init_std=0.02,
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True))
optim_wrapper = dict(optimizer=dict(lr=0.05, weight_decay=0.0))
