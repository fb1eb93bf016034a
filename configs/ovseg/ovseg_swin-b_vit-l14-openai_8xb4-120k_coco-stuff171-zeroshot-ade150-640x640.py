# OVSeg zero-shot on ADE20K-150 val (2000 images; mmseg's ADE20KDataset,
# data/ade/ADEChallengeData2016): the COCO-Stuff-trained model, short side
# 640, single scale, lambda 0.7 (paper App. A.3), mask threshold 0.4. The
# vocabulary is the authors' (detectron2's ADE20K_SEM_SEG_CATEGORIES: "tv",
# "window", "road, route", ... each one prompt string; 51 differ from
# mmseg's ADE20KDataset names), from clipdense/datasets/resources/ovseg_names/.
# For mmseg's names instead: custom_hooks = [dict(type='DatasetVocabularyHook', vocabulary_file='ovseg_names/ade150.txt')].
# Paper (Tab. 1, Swin-B + ViT-L/14, adapted CLIP): 29.6 mIoU.
#   python tools/test.py configs/ovseg/ovseg_swin-b_vit-l14-openai_8xb4-120k_coco-stuff171-zeroshot-ade150-640x640.py CKPT
_base_ = ['./ovseg_swin-b_vit-l14-openai_8xb4-120k_coco-stuff171-640x640.py']
model = dict(decode_head=dict(ensemble_weight=0.7))
test_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='ADE20KDataset',
        data_root='data/ade/ADEChallengeData2016',
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline={{_base_.test_pipeline}}))
val_dataloader = test_dataloader
custom_hooks = [dict(type='DatasetVocabularyHook', vocabulary_file='ovseg_names/ade150.txt')]
