# clipdense runtime defaults: mmseg's, in the clipdense scope.
_base_ = ['mmseg::_base_/default_runtime.py']
default_scope = 'clipdense'
