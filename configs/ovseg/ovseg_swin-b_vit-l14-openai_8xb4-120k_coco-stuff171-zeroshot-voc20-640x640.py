# OVSeg zero-shot on PASCAL VOC 2012 val without background (20 classes,
# 1449 images; background pixels ignored, see _base_/datasets/pascal_voc12_20cls.py),
# short side 640, lambda 0.6 (paper App. A.3; the authors' README uses 0.45),
# mask threshold 0.4. The vocabulary is the authors' (VOC's own names,
# "diningtable", "pottedplant", "tvmonitor"; clipdense/datasets/resources/
# ovseg_names/voc20.txt); voc20_readable_names is clipdense's alternative:
# custom_hooks = [dict(type='DatasetVocabularyHook', vocabulary=voc20_readable_names)].
# Paper (Tab. 1, Swin-B + ViT-L/14, adapted CLIP): 94.5 mIoU.
_base_ = ['./ovseg_swin-b_vit-l14-openai_8xb4-120k_coco-stuff171-640x640.py']
voc20_classes = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
                 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
                 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
                 'train', 'tvmonitor')
voc20_readable_names = ['aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
               'chair', 'cow', 'dining table', 'dog', 'horse', 'motorbike', 'person',
               'potted plant', 'sheep', 'sofa', 'train', 'tv monitor']
model = dict(decode_head=dict(ensemble_weight=0.6))
test_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='PascalVOCDataset',
        data_root='data/VOCdevkit/VOC2012',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        metainfo=dict(classes=voc20_classes),
        pipeline={{_base_.test_pipeline}}))
val_dataloader = test_dataloader
custom_hooks = [dict(type='DatasetVocabularyHook', vocabulary_file='ovseg_names/voc20.txt')]
