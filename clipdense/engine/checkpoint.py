"""Safe and durable checkpoints for MMEngine runners under torch >= 2.6.

Three problems, fixed where they arise rather than by turning safety off:

1. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and
   MMEngine 0.10 pickles a few of its own types into every checkpoint (the
   message hub's :class:`HistoryBuffer`, numpy arrays and scalars), so
   ``--resume`` fails with ``Unsupported global: ...HistoryBuffer``. We keep
   ``weights_only=True`` and allow-list exactly those types
   (:data:`MMENGINE_SAFE_GLOBALS`) with ``torch.serialization.add_safe_globals``.
2. A checkpoint whose pickle references anything else (a hostile file, or an
   old trusted checkpoint that pickled arbitrary objects) is refused with
   :class:`UnsafeCheckpointError`, which names the opt-in: set
   ``CLIPDENSE_TRUST_CHECKPOINTS=1`` (or pass ``--trust-checkpoint`` to the
   tools) to load a file you trust with full unpickling. Off by default.
3. MMEngine writes checkpoints in place, so a process killed while saving
   leaves a truncated file where a good one was. The local file backend is
   replaced by :class:`AtomicLocalBackend`, which writes to a temporary file in
   the same folder, fsyncs it and renames it over the target.
   :func:`find_resumable_checkpoint` never returns a partial file, even when
   the ``last_checkpoint`` pointer itself was cut short.
4. ``torch.load`` hands TorchScript archives to ``torch.jit.load``, which
   runs code stored in the archive. :func:`safe_torch_load` reads such an
   archive's tensors with :mod:`clipdense.engine.torchscript_archive`
   instead, which runs nothing.
"""
import os
import os.path as osp
import pickle
import re
import tempfile
import warnings
import zipfile
from typing import Optional

import torch
from mmengine.fileio import LocalBackend, register_backend

TRUST_ENV = 'CLIPDENSE_TRUST_CHECKPOINTS'


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs full unpickling, which could run code."""


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


def atomic_write_bytes(filepath, data: bytes) -> None:
    """Write ``data`` to ``filepath`` so that readers see either the old file
    or the complete new one, never a truncated file."""
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix='.' + osp.basename(filepath) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - e.g. file systems without dir fsync
        pass


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with atomic ``put`` / ``put_text``."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(filepath, obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(filepath, obj.encode(encoding))


_CKPT_RE = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def is_complete_checkpoint(path) -> bool:
    """True when ``path`` is a whole ``torch.save`` archive (zip format with
    its central directory, which is written last)."""
    if not path or not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return len(zf.namelist()) > 0
    except (zipfile.BadZipFile, OSError):
        return False


def find_resumable_checkpoint(work_dir) -> Optional[str]:
    """The newest complete checkpoint in ``work_dir``, or None.

    Trusts the ``last_checkpoint`` pointer when it names a complete file;
    otherwise (pointer missing, empty, cut short or naming a partial file)
    falls back to the highest ``iter_N.pth`` / ``epoch_N.pth`` that is
    complete.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if is_complete_checkpoint(named):
            return named
    if not osp.isdir(work_dir):
        return None
    found = []
    for name in os.listdir(work_dir):
        m = _CKPT_RE.match(name)
        if m:
            found.append((int(m.group(2)), osp.join(work_dir, name)))
    for _, path in sorted(found, reverse=True):
        if is_complete_checkpoint(path):
            return path
    return None


def remove_stale_temporaries(work_dir) -> int:
    """Delete ``.<name>.*.tmp`` files left by a process killed mid-save:
    of checkpoints (``.iter_3.pth.*.tmp``) and of the ``last_checkpoint``
    pointer, which :class:`CheckpointHook` also writes atomically. Call only
    when no other process writes to ``work_dir``."""
    removed = 0
    if osp.isdir(work_dir):
        for name in os.listdir(work_dir):
            if name.startswith('.') and name.endswith('.tmp') and \
                    ('.pth.' in name or name.startswith('.last_checkpoint.')):
                os.unlink(osp.join(work_dir, name))
                removed += 1
    return removed


_installed = False


def install_safe_globals():
    torch.serialization.add_safe_globals(mmengine_safe_globals())


def install_checkpoint_safety() -> None:
    """Install the allow-list, the safe local loader and atomic writes.
    Idempotent; called by :func:`clipdense.utils.register_all_modules`."""
    global _installed
    if _installed:
        return
    from mmengine.fileio import io as mm_io
    from mmengine.runner.checkpoint import CheckpointLoader

    install_safe_globals()
    CheckpointLoader.register_scheme(prefixes='', force=True)(
        load_from_local_safe)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # Backends are cached per prefix: drop plain local instances created
    # before this call so that every later writer is atomic.
    for key, backend in list(mm_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del mm_io.backend_instances[key]
    _installed = True
