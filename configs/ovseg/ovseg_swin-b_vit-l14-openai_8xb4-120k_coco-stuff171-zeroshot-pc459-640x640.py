# OVSeg zero-shot on Pascal Context-459 val (5105 images). mmseg has no
# PC-459 dataset: prepare it with detectron2's prepare_pascal_context.py (as
# OVSeg does: .jpg images, 16-bit .tif labels, 65535 = ignore). The class names are
# the authors' (PASCALCONTEX459_NAMES of register_pascal_context.py, in their label order, each
# name one prompt string), shipped as clipdense/datasets/resources/ovseg_names/pc459.txt
# (ClassListSegDataset finds it there when data_root has no such file).
# Short side 640, lambda 0.6, mask threshold 0.4.
# Paper (Tab. 1, Swin-B + ViT-L/14, adapted CLIP): 12.4 mIoU.
_base_ = ['./ovseg_swin-b_vit-l14-openai_8xb4-120k_coco-stuff171-640x640.py']
model = dict(decode_head=dict(ensemble_weight=0.6))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations', imdecode_backend='pillow'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='ClassListSegDataset',
        classes_file='ovseg_names/pc459.txt',
        data_root='data/pascal_ctx_d2',
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations_ctx459/validation'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=65535)
val_evaluator = test_evaluator
custom_hooks = [dict(type='DatasetVocabularyHook')]
