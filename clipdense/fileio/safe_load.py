"""Safe loading of checkpoints and weight files under torch >= 2.6.

``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and
MMEngine 0.10 pickles a few of its own types into every checkpoint (the
message hub's :class:`HistoryBuffer`, numpy arrays and scalars). We keep
``weights_only=True`` and allow-list exactly those types
(:func:`mmengine_safe_globals`). A checkpoint whose pickle references
anything else is refused with :class:`UnsafeCheckpointError`, which names the
opt-in: ``CLIPDENSE_TRUST_CHECKPOINTS=1`` (or ``--trust-checkpoint`` of the
tools). ``torch.load`` hands TorchScript archives to ``torch.jit.load``,
which runs code stored in the archive; :func:`safe_torch_load` reads their
tensors with :mod:`clipdense.fileio.torchscript_archive` instead, which runs
nothing.
"""
import os
import os.path as osp
import pickle
import warnings

import torch

from .errors import UnsafeCheckpointError

TRUST_ENV = 'CLIPDENSE_TRUST_CHECKPOINTS'


def _numpy_safe_globals():
    import numpy as np
    try:  # numpy >= 2 moved the implementation to numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = {type(np.dtype(t)) for t in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16',
        'uint32', 'uint64', 'float16', 'float32', 'float64', 'complex64',
        'complex128', 'object', 'U', 'S')}
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


def _history_buffer_getattr(obj, name):
    """Stands in for ``builtins.getattr`` during safe loading.

    A pickled :class:`HistoryBuffer` stores its statistics methods as
    ``getattr(HistoryBuffer, 'mean')`` etc. Allow-listing the real
    ``getattr`` would let a file reach any attribute of any allowed type, so
    only the lookups MMEngine itself writes are answered.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = {'min', 'max', 'mean', 'current',
               *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint')


def mmengine_safe_globals():
    """The types MMEngine itself writes into checkpoints: its message hub's
    history buffers (with their statistics methods) and the numpy arrays,
    scalars and dtypes inside them."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'),
            *_numpy_safe_globals()]


def trust_checkpoints_enabled() -> bool:
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true',
                                                             'yes')


def safe_torch_load(f, map_location=None):
    """``torch.load`` with ``weights_only=True`` and the MMEngine allow-list.

    Raises:
        UnsafeCheckpointError: the file needs types outside the allow-list and
            ``CLIPDENSE_TRUST_CHECKPOINTS`` is not set. Nothing from the file
            has been executed.
    """
    install_safe_globals()
    from .torchscript_archive import is_torchscript_archive
    if is_torchscript_archive(f):
        return _load_torchscript_weights(f)
    try:
        return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        name = f if isinstance(f, (str, os.PathLike)) else '<stream>'
        if trust_checkpoints_enabled():
            warnings.warn(f'{TRUST_ENV} is set: loading {name} with full '
                          'unpickling. Only do this for files you trust.')
            if hasattr(f, 'seek'):
                f.seek(0)
            return torch.load(f, map_location=map_location,
                              weights_only=False)
        detail = str(err).strip().splitlines()
        detail = detail[0] if detail else repr(err)
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {name}: its pickle needs objects '
            f'that are not plain weights ({detail}). Loading it could run '
            'arbitrary code. If you trust this file (e.g. an old checkpoint '
            f'of your own), set {TRUST_ENV}=1 or pass --trust-checkpoint '
            '(tools/train.py, tools/test.py, demo/image_demo.py, '
            'tools/model_converters/mm2openclip.py).') from None


def _load_torchscript_weights(f):
    """A TorchScript archive given where a checkpoint was expected: its
    state dict, read without running the archive's code (full
    ``torch.jit.load`` only when the safe reader refuses and
    ``CLIPDENSE_TRUST_CHECKPOINTS`` is set)."""
    from .torchscript_archive import (UnsafeTorchScriptError,
                                      read_torchscript_state_dict)
    name = f if isinstance(f, (str, os.PathLike)) else '<stream>'
    try:
        return read_torchscript_state_dict(f)
    except UnsafeTorchScriptError as err:
        if not trust_checkpoints_enabled():
            raise UnsafeTorchScriptError(
                f'Refusing the TorchScript archive {err}. If you trust this '
                f'file, set {TRUST_ENV}=1 or pass --trust-checkpoint '
                '(torch.jit.load then runs its code).') from None
    warnings.warn(f'{TRUST_ENV} is set: loading the TorchScript archive '
                  f'{name} with torch.jit.load, which runs its code.')
    if hasattr(f, 'seek'):
        f.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        return torch.jit.load(f, map_location='cpu').state_dict()


def load_from_local_safe(filename, map_location=None):
    """Replacement for MMEngine's local checkpoint loader (scheme '')."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def install_safe_globals():
    torch.serialization.add_safe_globals(mmengine_safe_globals())
