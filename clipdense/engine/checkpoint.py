"""Safe and durable checkpoints for MMEngine runners under torch >= 2.6.

Three problems, fixed where they arise rather than by turning safety off:

1. (:mod:`clipdense.fileio.safe_load`) ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and
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
   archive's tensors with :mod:`clipdense.fileio.torchscript_archive`
   instead, which runs nothing.
"""
import os
import os.path as osp
import re
import zipfile
from typing import Optional

from mmengine.fileio import LocalBackend, register_backend

# the loading and writing halves live in clipdense.fileio (models use them
# too); their names stay importable from here for scripts that use them
from clipdense.fileio.atomic import AtomicLocalBackend, atomic_write_bytes  # noqa: F401
from clipdense.fileio.safe_load import (TRUST_ENV, UnsafeCheckpointError,  # noqa: F401
                                        install_safe_globals, load_from_local_safe,
                                        mmengine_safe_globals, safe_torch_load,
                                        trust_checkpoints_enabled)

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
