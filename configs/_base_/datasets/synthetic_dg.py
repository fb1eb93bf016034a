# The synthetic world as a domain generalization benchmark: train on the
# source style "flat", test on the target styles textured, night and fog
# (tools/analysis_tools/dg_benchmark.py reads dg_targets; "flat" is the
# source-domain reference and stays out of the target mean).
_base_ = ['./synthetic_seg.py']
dg_targets = dict(
    flat=dict(type='SyntheticSegDataset', data_root='data/synthetic',
              style='flat', split='val'),
    textured=dict(type='SyntheticSegDataset', data_root='data/synthetic',
                  style='textured', split='val'),
    night=dict(type='SyntheticSegDataset', data_root='data/synthetic',
               style='night', split='val'),
    fog=dict(type='SyntheticSegDataset', data_root='data/synthetic',
             style='fog', split='val'),
)
dg_source = 'flat'
dg_default_targets = ['flat', 'textured', 'night', 'fog']
