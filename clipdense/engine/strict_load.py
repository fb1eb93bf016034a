"""Strict checkpoint loading for evaluation and inference.

MMEngine loads ``load_from`` with ``strict=False``: a checkpoint of another
architecture, one trained with another ``num_classes``, or one whose keys
match nothing only logs warnings, and the layers it did not fill keep their
random initial weights; the run then reports an mIoU (or writes overlays)
of a half-random model and exits 0. ``tools/test.py``, the demo and
:func:`clipdense.apis.init_model` check instead that the checkpoint fits
(:func:`check_state_dict_fits`) and refuse it with a
:class:`CheckpointMismatchError` naming the keys that do not match and the
fix. ``--allow-partial-load`` (or ``allow_partial_load=True`` in the config,
``init_model(..., allow_partial_load=True)``) restores MMEngine's partial
load.

:func:`read_checkpoint` turns a file that is not a complete checkpoint
(truncated download, interrupted copy) into a :class:`CheckpointReadError`
with the path, instead of PyTorch's ``PytorchStreamReader failed ...``.
"""
import pickle
import zipfile
from typing import Optional

from torch import nn

#: at most this many keys are named per kind of mismatch
MAX_NAMED = 6

PARTIAL_HINT = ('--allow-partial-load (tools/test.py, demo/image_demo.py), '
                'allow_partial_load=True in the config or '
                'init_model(..., allow_partial_load=True)')


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (base class)."""


class CheckpointReadError(CheckpointError):
    """The file is not a complete checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's weights do not fit the model."""


def read_checkpoint(path: str, map_location='cpu') -> dict:
    """Load a checkpoint with clipdense's safe loader (weights only; see
    :mod:`clipdense.engine.checkpoint`).

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file needs full unpickling.
        CheckpointReadError: the file is truncated or not a checkpoint.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from clipdense.engine.checkpoint import (UnsafeCheckpointError,
                                             install_checkpoint_safety)
    install_checkpoint_safety()
    try:
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    except (FileNotFoundError, UnsafeCheckpointError):
        raise
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError,
            OSError, ValueError) as err:
        detail = str(err).strip().splitlines()
        detail = detail[0] if detail else type(err).__name__
        raise CheckpointReadError(
            f'cannot read checkpoint {path}: it is truncated or not a '
            f'checkpoint written by torch.save ({detail}). Download or copy '
            'it again; for a training run, tools/train.py --resume picks the '
            'newest complete checkpoint of the work dir') from None


def state_dict_of(checkpoint) -> dict:
    """The weights of a loaded checkpoint (``state_dict`` of a runner
    checkpoint, or a plain state dict), without a ``module.`` prefix."""
    sd = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict):
        raise CheckpointReadError(
            f'the checkpoint holds a {type(checkpoint).__name__}, not a dict of '
            'weights')
    return {(k[len('module.'):] if k.startswith('module.') else k): v
            for k, v in sd.items()}


def _named(keys, more_text=''):
    keys = list(keys)
    shown = ', '.join(keys[:MAX_NAMED])
    if len(keys) > MAX_NAMED:
        shown += f', ... ({len(keys) - MAX_NAMED} more{more_text})'
    return shown


def check_state_dict_fits(model: nn.Module, state_dict: dict,
                          source: str = 'the checkpoint') -> None:
    """Raise :class:`CheckpointMismatchError` unless every tensor of
    ``model``'s state dict is in ``state_dict`` with the same shape and
    ``state_dict`` has nothing else."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [(k, tuple(state_dict[k].shape), tuple(own[k].shape))
              for k in own if k in state_dict
              and hasattr(state_dict[k], 'shape')
              and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return
    matched = len(own) - len(missing) - len(shapes)
    parts = [f'{source} does not fit the model ({type(model).__name__}): '
             f'{matched} of its {len(own)} tensors match']
    if matched == 0:
        parts.append('no key matches at all: it is a checkpoint of another '
                     'model, or its keys carry another prefix')
    if shapes:
        parts.append(f'{len(shapes)} differ in shape: ' + _named(
            f'{k} (checkpoint {tuple(a)}, model {tuple(b)})'
            for k, a, b in shapes))
    if unexpected:
        parts.append(f'{len(unexpected)} keys of the checkpoint are not in '
                     'the model: ' + _named(unexpected))
    if missing:
        parts.append(f'{len(missing)} keys of the model are not in the '
                     'checkpoint: ' + _named(missing))
    hint = ('Use the config the checkpoint was trained with (same '
            'architecture and num_classes / classes)')
    if any(k.endswith(('conv_seg.weight', 'conv_seg.bias')) or 'cls' in k
           for k, _, _ in shapes):
        hint += '; a different number of classes shows as a shape mismatch of the classifier'
    parts.append(hint + f'. To load only what matches and keep the initial '
                 f'weights elsewhere, pass {PARTIAL_HINT}.')
    raise CheckpointMismatchError('; '.join(parts[:-1]) + '. ' + parts[-1])


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model a runner loads weights into (without DDP or TTA wrappers)."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):
        model = model.module
    return model


def check_checkpoint_fits(model: nn.Module, path: str,
                          checkpoint: Optional[dict] = None) -> dict:
    """Read ``path`` (unless ``checkpoint`` is given) and check it fits
    ``model``; returns the loaded checkpoint."""
    if checkpoint is None:
        checkpoint = read_checkpoint(path)
    check_state_dict_fits(unwrap_model(model), state_dict_of(checkpoint),
                          f'checkpoint {path}')
    return checkpoint
