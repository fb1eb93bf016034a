# clipdense runtime defaults: mmseg's, in the clipdense scope.
_base_ = ['mmseg::_base_/default_runtime.py']
default_scope = 'clipdense'
# In this scope `type='CheckpointHook'` (in mmseg's schedules, in clipdense's
# configs, and MMEngine's default checkpoint hook) resolves to clipdense's
# crash-safe hook: the new checkpoint is complete before old ones are
# deleted, whatever max_keep_ckpts is (clipdense/engine/checkpoint_hook.py).
