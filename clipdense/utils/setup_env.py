import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True,
                         detection: bool = True) -> None:
    """Import every clipdense module that registers something (datasets,
    transforms, models, hooks and loops, metrics, visualizers) together
    with mmseg's (and, for detection, mmdet's) modules. Like mmseg's helper
    it imports nothing else: ``clipdense.apis`` calls this function, so it
    must not import ``clipdense.apis`` (see the layers in
    ``docs/adding_a_method.md``).

    Also installs the checkpoint safety layer (safe ``torch.load`` with the
    MMEngine allow-list, atomic checkpoint writes); see
    :mod:`clipdense.engine.checkpoint`.

    Args:
        init_default_scope (bool): set the default scope to ``clipdense``
            when no scope is active yet, as mmseg's helper does.
        detection (bool): also import mmdet's modules, so that ``mmdet.X``
            types resolve from clipdense configs and ``clipdense.X`` types
            from mmdet configs.
    """
    import mmseg.datasets  # noqa: F401
    import mmseg.engine  # noqa: F401
    import mmseg.evaluation  # noqa: F401
    import mmseg.models  # noqa: F401
    import mmseg.structures  # noqa: F401

    if detection:
        import mmdet.datasets  # noqa: F401
        import mmdet.engine  # noqa: F401
        import mmdet.evaluation  # noqa: F401
        import mmdet.models  # noqa: F401
        import mmdet.visualization  # noqa: F401

    import clipdense.datasets  # noqa: F401
    import clipdense.engine  # noqa: F401
    import clipdense.evaluation  # noqa: F401
    import clipdense.models  # noqa: F401
    import clipdense.visualization  # noqa: F401
    from clipdense.engine.checkpoint import install_checkpoint_safety
    install_checkpoint_safety()

    if init_default_scope:
        never_created = DefaultScope.get_current_instance() is None \
            or not DefaultScope.check_instance_created('clipdense')
        if never_created:
            DefaultScope.get_instance('clipdense', scope_name='clipdense')
            return
        current_scope = DefaultScope.get_current_instance()
        if current_scope.scope_name != 'clipdense':
            warnings.warn('The current default scope '
                          f'"{current_scope.scope_name}" is not "clipdense", '
                          '`register_all_modules` will force the current '
                          'default scope to be "clipdense". If this is not '
                          'expected, please set `init_default_scope=False`.')
            new_instance_name = f'clipdense-{datetime.datetime.now()}'
            DefaultScope.get_instance(new_instance_name, scope_name='clipdense')
