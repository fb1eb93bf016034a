# OVSeg zero-shot on Pascal Context-59 val (5105 images; mmseg's
# PascalContextDataset59, data/VOCdevkit/VOC2010), short side 640, lambda 0.6
# (paper App. A.3), mask threshold 0.4. The vocabulary is the dataset's
# names: mmseg's 59 strings are the authors' (their PASCALCONTEX59_NAMES,
# clipdense/datasets/resources/ovseg_names/pc59.txt), in mmseg's label order
# (alphabetical; the authors' detectron2 labels use another order, so that
# file must not be given as the vocabulary of mmseg's dataset).
# Paper (Tab. 1, Swin-B + ViT-L/14, adapted CLIP): 55.7 mIoU.
_base_ = ['./ovseg_swin-b_vit-l14-openai_8xb4-120k_coco-stuff171-640x640.py']
model = dict(decode_head=dict(ensemble_weight=0.6))
test_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='PascalContextDataset59',
        data_root='data/VOCdevkit/VOC2010',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt',
        pipeline={{_base_.test_pipeline}}))
val_dataloader = test_dataloader
custom_hooks = [dict(type='DatasetVocabularyHook')]
