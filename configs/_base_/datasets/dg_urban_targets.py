# Named test sets for domain generalization benchmarks
# (tools/analysis_tools/dg_benchmark.py CONFIG CKPT --targets NAME ...), all
# in the 19-class Cityscapes label space (val splits). Each entry is a
# dataset config without a pipeline: the tool uses the config's
# test_dataloader pipeline (the source model's test scale) unless an
# entry sets its own. Paths follow mmseg's data/ conventions; the
# converters are in tools/dataset_converters/dg_labels.py.
dg_targets = dict(
    cityscapes=dict(
        type='CityscapesDataset',
        data_root='data/cityscapes',
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val')),
    bdd100k=dict(
        type='BDD100KDataset',
        data_root='data/bdd100k',
        data_prefix=dict(
            img_path='images/10k/val',
            seg_map_path='labels/sem_seg/masks/val')),
    mapillary=dict(
        type='MapillaryCityscapesDataset', data_root='data/mapillary'),
    acdc=dict(type='ACDCDataset', data_root='data/acdc', split='val'),
    acdc_fog=dict(
        type='ACDCDataset', data_root='data/acdc', split='val',
        conditions='fog'),
    acdc_night=dict(
        type='ACDCDataset', data_root='data/acdc', split='val',
        conditions='night'),
    acdc_rain=dict(
        type='ACDCDataset', data_root='data/acdc', split='val',
        conditions='rain'),
    acdc_snow=dict(
        type='ACDCDataset', data_root='data/acdc', split='val',
        conditions='snow'),
)
