# clipdense runtime defaults for detection configs: mmdet's (scope 'mmdet'),
# with clipdense's crash-safe CheckpointHook (the new checkpoint is complete
# before old ones are deleted; see clipdense/engine/checkpoint_hook.py).
_base_ = ['mmdet::_base_/default_runtime.py']
default_hooks = dict(checkpoint=dict(type='clipdense.CheckpointHook'))
