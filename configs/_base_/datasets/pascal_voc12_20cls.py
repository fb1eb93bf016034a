# PASCAL VOC 2012 "without background" (20 classes), the protocol of
# MaskCLIP's (and most zero-shot papers') VOC numbers: pixels labelled
# background (0) are ignored and the object labels 1..20 become 0..19.
# Done by giving mmseg's PascalVOCDataset the 20 object classes as
# `metainfo.classes`: BaseSegDataset then builds the label map
# {0: 255, 1: 0, ..., 20: 19} and LoadAnnotations applies it (the same
# effect as MaskCLIP's reduce_zero_label=True on a 20-class dataset; 255
# boundaries stay ignored). IoUMetric then averages over the 20 classes.
_base_ = ['mmseg::_base_/datasets/pascal_voc12.py']
voc20_classes = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
                 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
                 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
                 'train', 'tvmonitor')
train_dataloader = dict(dataset=dict(metainfo=dict(classes=voc20_classes)))
val_dataloader = dict(dataset=dict(metainfo=dict(classes=voc20_classes)))
test_dataloader = val_dataloader
