"""Read the weights of a TorchScript archive without running TorchScript.

``torch.jit.load`` restores a module by running code from the archive: a
class's ``__setstate__`` written in TorchScript runs at load time and can,
for instance, write any file through ``torch.from_file(path, True, n)``.
OpenAI's CLIP files (``RN50.pt``, ``ViT-B-16.pt`` ...) are TorchScript
archives, so a tampered download would run its code on the first
``pretrained=``.

:func:`read_torchscript_state_dict` gives the archive's ``state_dict()``
(the same keys and values ``torch.jit.load(path).state_dict()`` gives)
without running anything from the archive:

* ``data.pkl`` (the module tree) is read by an unpickler that resolves only
  an allow-list of globals: TorchScript classes (``__torch__.*``) become
  inert records of their attributes, tensors are rebuilt by clipdense's own
  function from storages read directly from the zip's ``data/`` records,
  and the few list/type-tag helpers TorchScript writes return their
  argument. Any other global is refused (:class:`UnsafeTorchScriptError`).
* which attributes are parameters and buffers is read from the
  ``__parameters__ = [...]`` / ``__buffers__ = [...]`` lines of the class
  definitions under ``code/`` as text; nothing there is compiled or run.
* a module class that defines ``__setstate__`` stores a state only its own
  code can interpret: refused.

Trusted archives that this reader refuses can still be loaded with
``torch.jit.load`` on explicit request (``trust_torchscript=True`` in
:func:`clipdense.models.utils.load_weight_file`, or
``CLIPDENSE_TRUST_CHECKPOINTS=1`` / ``--trust-checkpoint``).
"""
import collections
import os
import pickle
import re
import sys
import zipfile
from typing import Dict, Optional

import torch

from .errors import UnsafeCheckpointError

_STORAGE_DTYPES = {
    'DoubleStorage': torch.float64, 'FloatStorage': torch.float32,
    'HalfStorage': torch.float16, 'BFloat16Storage': torch.bfloat16,
    'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8,
    'ByteStorage': torch.uint8, 'BoolStorage': torch.bool,
    'ComplexFloatStorage': torch.complex64,
    'ComplexDoubleStorage': torch.complex128,
}


class UnsafeTorchScriptError(UnsafeCheckpointError):
    """A TorchScript archive that cannot be read without running its code."""


def is_torchscript_archive(f) -> bool:
    """True for a zip holding ``constants.pkl`` (what ``torch.load`` itself
    takes for a TorchScript archive)."""
    try:
        if not zipfile.is_zipfile(f):
            return False
        with zipfile.ZipFile(f) as zf:
            return any(n == 'constants.pkl' or n.endswith('/constants.pkl')
                       for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    finally:
        if hasattr(f, 'seek'):
            f.seek(0)


class _ScriptObject:
    """An inert stand-in for an instance of a TorchScript class: it records
    the state the archive stores for it and never runs anything."""
    _qualname = ''

    def __setstate__(self, state):
        self.__dict__['_state'] = state

    def __repr__(self):
        return f'<TorchScript object {self._qualname}>'


class _StorageType:

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad,
                    backward_hooks, metadata=None):
    """Stands in for ``torch._utils._rebuild_tensor_v2``; hooks and
    metadata are ignored (nothing is called)."""
    if not isinstance(storage, tuple) or len(storage) != 2:
        raise UnsafeTorchScriptError('a tensor without a storage record')
    untyped, dtype = storage
    if not (isinstance(storage_offset, int) and all(
            isinstance(v, int) for v in (*size, *stride))):
        raise UnsafeTorchScriptError('a tensor with a malformed layout')
    t = torch.empty((0, ), dtype=dtype, device='cpu')
    t.set_(untyped, storage_offset, tuple(size), tuple(stride))
    return t


def _identity_first(value, *args):
    return value


_ALLOWED = {
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch.jit._pickle', 'restore_type_tag'): _identity_first,
    ('torch.jit._pickle', 'build_intlist'): _identity_first,
    ('torch.jit._pickle', 'build_doublelist'): _identity_first,
    ('torch.jit._pickle', 'build_boollist'): _identity_first,
    ('torch.jit._pickle', 'build_tensorlist'): _identity_first,
    ('torch', 'device'): torch.device,
    ('builtins', 'complex'): complex,
}


class _ArchiveUnpickler(pickle.Unpickler):

    def __init__(self, data_file, zf: zipfile.ZipFile, prefix: str,
                 name: str):
        super().__init__(data_file)
        self.zf, self.prefix, self.name = zf, prefix, name
        self.storages = {}
        self.classes = {}

    def find_class(self, module, name):
        if (module == '__torch__' or module.startswith('__torch__.')) and \
                isinstance(name, str) and name.isidentifier():
            qualname = f'{module}.{name}'
            if qualname not in self.classes:
                self.classes[qualname] = type(name, (_ScriptObject, ),
                                              {'_qualname': qualname})
            return self.classes[qualname]
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise UnsafeTorchScriptError(
            f'{self.name}: the module tree (data.pkl) references '
            f'{module}.{name}, which is not a TorchScript class, tensor or '
            'container; reading it could run code')

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage'
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int) and pid[4] >= 0):
            raise UnsafeTorchScriptError(
                f'{self.name}: unexpected persistent record {pid!r:.80}')
        _, stype, key, _location, numel = pid
        if key not in self.storages:
            record = f'{self.prefix}data/{key}'
            nbytes = numel * stype.dtype.itemsize
            try:
                info = self.zf.getinfo(record)
            except KeyError:
                raise ValueError(f'{self.name}: tensor data {record} is missing '
                                 '(truncated or damaged archive)') from None
            if info.file_size < nbytes:
                raise ValueError(f'{self.name}: tensor data {record} holds '
                                 f'{info.file_size} bytes, {nbytes} expected')
            with self.zf.open(info) as fh:
                raw = bytearray(fh.read(nbytes))
            buf = torch.frombuffer(raw, dtype=torch.uint8) if raw else \
                torch.empty(0, dtype=torch.uint8, device='cpu')
            self.storages[key] = buf.untyped_storage()
        return (self.storages[key], stype.dtype)


_LIST_RE = re.compile(r'^\s+(__parameters__|__buffers__)\s*=\s*\[(.*)\]\s*$')


class _ClassInfo:

    def __init__(self, is_module, parameters, buffers, has_setstate):
        self.is_module = is_module
        self.parameters = parameters
        self.buffers = buffers
        self.has_setstate = has_setstate


def _class_info(zf, prefix, qualname, cache) -> Optional[_ClassInfo]:
    """Parameters/buffers/``__setstate__`` of a TorchScript class, read as
    text from its definition under ``code/``; None when not found."""
    if qualname in cache:
        return cache[qualname]
    module, _, name = qualname.rpartition('.')
    record = f'{prefix}code/{module.replace(".", "/")}.py'
    info = None
    try:
        text = zf.read(record).decode('utf-8', errors='replace')
    except KeyError:
        text = ''
    lines = text.splitlines()
    head = re.compile(r'^class\s+' + re.escape(name) + r'\s*\((.*)\)\s*:')
    for i, line in enumerate(lines):
        m = head.match(line)
        if not m:
            continue
        lists = {'__parameters__': [], '__buffers__': []}
        has_setstate = False
        for body in lines[i + 1:]:
            if body.strip() and not body[0].isspace():
                break
            lm = _LIST_RE.match(body)
            if lm:
                lists[lm.group(1)] = re.findall(r'"([^"]*)"', lm.group(2))
            if re.match(r'^\s+def\s+__setstate__\s*\(', body):
                has_setstate = True
        info = _ClassInfo(m.group(1).strip() == 'Module',
                          lists['__parameters__'], lists['__buffers__'],
                          has_setstate)
        break
    cache[qualname] = info
    return info


def _archive_prefix(zf: zipfile.ZipFile, name: str) -> str:
    pkls = [n for n in zf.namelist()
            if n == 'data.pkl' or (n.endswith('/data.pkl') and n.count('/') == 1)]
    if len(pkls) != 1:
        raise ValueError(f'{name}: not a TorchScript archive (no single '
                         'data.pkl record)')
    return pkls[0][:-len('data.pkl')]


def read_torchscript_state_dict(f) -> Dict[str, torch.Tensor]:
    """The ``state_dict()`` of a TorchScript archive, without running it.

    Args:
        f (str | file): path or binary file object of the archive.

    Returns:
        dict: parameter and buffer names (as ``torch.jit.load(f).state_dict()``
        names them) to CPU tensors.

    Raises:
        UnsafeTorchScriptError: the archive needs more than plain module
            state (a global outside the allow-list, or a module class that
            defines ``__setstate__``). Nothing from it has been run.
        ValueError: not a TorchScript archive, or a damaged one.
    """
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else '<stream>'
    try:
        zf = zipfile.ZipFile(f)
    except zipfile.BadZipFile as e:
        raise ValueError(f'{name}: not a complete zip archive ({e})') from None
    with zf:
        prefix = _archive_prefix(zf, name)
        try:
            order = zf.read(prefix + 'byteorder').decode().strip()
        except KeyError:
            order = 'little'
        if order != sys.byteorder:
            raise ValueError(f'{name}: tensors stored {order}-endian, this '
                             f'machine is {sys.byteorder}-endian')
        with zf.open(prefix + 'data.pkl') as data:
            unpickler = _ArchiveUnpickler(data, zf, prefix, name)
            try:
                root = unpickler.load()
            except (UnsafeTorchScriptError, ValueError):
                raise
            except Exception as e:  # noqa: BLE001 - malformed pickle
                raise ValueError(f'{name}: unreadable module tree (data.pkl): '
                                 f'{type(e).__name__}: {e}') from None
        if not isinstance(root, _ScriptObject):
            raise ValueError(f'{name}: data.pkl holds {type(root).__name__}, '
                             'not a TorchScript module')
        out = {}
        _collect(root, '', out, zf, prefix, name, {}, frozenset())
        return out


def _collect(obj, key_prefix, out, zf, prefix, name, cache, seen):
    if id(obj) in seen:  # a module among its own ancestors (a crafted cycle)
        raise ValueError(f'{name}: the module tree contains a cycle')
    info = _class_info(zf, prefix, obj._qualname, cache)
    state = obj.__dict__.get('_state')
    if (info is not None and info.has_setstate) or not isinstance(state, dict):
        raise UnsafeTorchScriptError(
            f'{name}: TorchScript module class {obj._qualname} restores '
            'itself with its own __setstate__ code; its weights cannot be '
            'read without running that code')
    if info is not None:
        names = info.parameters + info.buffers
    else:  # no class definition found: every tensor attribute
        names = [k for k, v in state.items() if isinstance(v, torch.Tensor)]
    for k in names:
        v = state.get(k)
        if isinstance(v, torch.Tensor):
            out[key_prefix + k] = v
    for k, v in state.items():
        if isinstance(v, _ScriptObject):
            sub = _class_info(zf, prefix, v._qualname, cache)
            if sub is None or sub.is_module:
                _collect(v, f'{key_prefix}{k}.', out, zf, prefix, name,
                         cache, seen | {id(obj)})
