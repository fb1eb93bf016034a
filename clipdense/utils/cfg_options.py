"""Check ``--cfg-options`` keys before they are merged into a config.

MMEngine's ``Config.merge_from_dict`` creates any key it is given, so a typo
(``model.test_cfg.labels_onyl=True``) is silently ignored by the model. The
tools (``tools/train.py``, ``tools/test.py``), the demo and
:func:`clipdense.apis.init_model` call :func:`check_cfg_options` first; it
refuses

* a key that does not exist but is close to one that does (or to a known
  optional key, e.g. ``test_cfg.slide_batch_size``), naming the closest one
  (:mod:`difflib`);
* a key under a part of the model with a ``type`` whose class does not
  take it as an argument (``model.decode_head.no_such_option``), listing
  its arguments (followed along ``**kwargs`` to the base classes);
* a key below a value that is not a dict or list (``model.type.x``), or a
  list index out of range.

A new key close to nothing that exists is accepted (so options a config
leaves out can still be added, e.g. ``model.test_cfg.slide_batch_size=4``).
"""
import difflib
import inspect
from typing import Iterable, Optional

#: optional keys of dicts that have no ``type`` (read with ``.get``), by the
#: name of the dict
KNOWN_OPTIONAL_KEYS = {
    'test_cfg': ('mode', 'crop_size', 'stride', 'slide_batch_size',
                 'labels_only', 'slide_progress', 'type', 'precision'),
    'train_cfg': ('type', 'max_iters', 'max_epochs', 'val_interval',
                  'val_begin', 'dynamic_intervals'),
    '': ('allow_partial_load', 'load_from', 'resume', 'work_dir',
         'randomness', 'launcher', 'tta_model', 'tta_pipeline'),
}


class CfgOptionsError(ValueError):
    """A ``--cfg-options`` key that does not exist in the config."""


def _class_of(type_):
    """The model class a ``type`` names (clipdense's MODELS registry, with
    mmseg's and mmdet's through it), or None."""
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    try:
        from clipdense.registry import MODELS
        cls = MODELS.get(type_)
    except Exception:  # noqa: BLE001  (unknown scope, import error)
        return None
    return cls if isinstance(cls, type) else None


def _init_arguments(cls) -> Optional[set]:
    """Argument names ``cls(...)`` takes, following ``**kwargs`` along the
    MRO; ``None`` when anything may be passed (or nothing is known)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            return names
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        kwargs = False
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                kwargs = True
            elif p.kind is not p.VAR_POSITIONAL and p.name != 'self':
                names.add(p.name)
        if not kwargs:
            return names
    return None


def _closest(word: str, choices: Iterable[str], cutoff=0.7):
    return difflib.get_close_matches(word, sorted(set(map(str, choices))), n=1,
                                     cutoff=cutoff)


def check_cfg_options(cfg, options: Optional[dict]) -> None:
    """Raise :class:`CfgOptionsError` for a key of ``options`` (dotted
    ``--cfg-options`` keys) that does not exist in ``cfg`` (see the module
    docstring)."""
    if not options:
        return
    for key in options:
        _check_key(cfg, str(key))


def _check_key(cfg, key: str) -> None:
    parts = key.split('.')
    node, parent_name = cfg, ''
    for i, part in enumerate(parts):
        here = '.'.join(parts[:i + 1])
        last = i == len(parts) - 1
        if isinstance(node, (list, tuple)):
            if not part.isdigit():
                raise CfgOptionsError(
                    f'--cfg-options {key}: {".".join(parts[:i]) or "the config"} '
                    f'is a list; index it with a number (0..{len(node) - 1})')
            if int(part) >= len(node):
                raise CfgOptionsError(
                    f'--cfg-options {key}: index {part} is out of range, '
                    f'{".".join(parts[:i])} has {len(node)} entries')
            node, parent_name = node[int(part)], parent_name
            continue
        if not hasattr(node, 'keys'):
            raise CfgOptionsError(
                f'--cfg-options {key}: {".".join(parts[:i])} is a value '
                f'({type(node).__name__}), it has no key {part!r}')
        if part in node:
            node, parent_name = node[part], part
            continue
        existing = [str(k) for k in node.keys()]
        known = set(existing) | set(KNOWN_OPTIONAL_KEYS.get(parent_name, ()))
        args = None
        # arguments are checked for the model's parts (other parts, e.g.
        # optim_wrapper, pass keys on to builders that read them)
        cls = _class_of(node.get('type')) \
            if 'type' in node and parts[0] == 'model' else None
        if cls is not None:
            args = _init_arguments(cls)
            if args is not None:
                known |= args
                if part in args:
                    return  # an argument the config leaves at its default
        elif part in known:
            return
        prefix = '.'.join(parts[:i])
        close = _closest(part, known)
        if close:
            raise CfgOptionsError(
                f'--cfg-options {key}: {here} does not exist; did you mean '
                f'{(prefix + "." if prefix else "") + close[0]}?')
        if args is not None:
            raise CfgOptionsError(
                f'--cfg-options {key}: {cls.__name__} ({prefix}) takes no '
                f'argument {part!r}; its arguments: {", ".join(sorted(args))}')
        if not last:
            return  # a new sub-dict close to nothing: allowed
        return
