# For training-free models (MaskCLIP): no optimisation ever happens
# (MaskCLIPHead.loss raises). These keys exist so that the usual tooling
# (tools/test.py, the Runner) can parse the config.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.0))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=0, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
