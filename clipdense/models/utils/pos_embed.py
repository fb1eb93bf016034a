"""Positional-embedding resizing for any input size, cached per size.

CLIP towers carry positional tables for one training grid (7x7 for RN50 at
224, 14x14 for ViT-B/16 at 224). Dense prediction feeds other, often
non-square sizes, so the grid part of the table is interpolated to the
feature size. DenseCLIP resized once at load time for one input size and
bilinearly again at every forward; clipdense interpolates directly from the
trained grid to each feature size, once, and keeps the result.
"""
from collections import OrderedDict
from typing import Callable, Hashable, Tuple

import torch
import torch.nn.functional as F


def resize_pos_table(table: torch.Tensor, src_hw: Tuple[int, int],
                     dst_hw: Tuple[int, int], num_prefix: int = 1,
                     mode: str = 'bicubic', antialias: bool = True) -> torch.Tensor:
    """Interpolate the grid rows of a positional table.

    Args:
        table (Tensor): ``(num_prefix + Hs*Ws, C)`` table (prefix rows,
            e.g. the class token's, first; they are kept as they are).
        src_hw (tuple[int, int]): trained grid ``(Hs, Ws)``.
        dst_hw (tuple[int, int]): target grid ``(Hd, Wd)``.
        num_prefix (int): number of prefix rows.
        mode (str): ``F.interpolate`` mode (``'bicubic'`` as open_clip and
            timm use at load time).
        antialias (bool): antialias bilinear/bicubic (default; torch then
            uses PIL's kernels, also when enlarging). ``False``: plain
            ``F.interpolate``, as mmseg 0.x models (MaskCLIP) resized and as
            DenseCLIP's code calls ``F.interpolate(mode='bilinear')``.

    Returns:
        Tensor: ``(num_prefix + Hd*Wd, C)`` in the dtype of ``table``.
    """
    (hs, ws), (hd, wd) = src_hw, dst_hw
    if table.shape[0] != num_prefix + hs * ws:
        raise ValueError(f'positional table has {table.shape[0]} rows, expected '
                         f'{num_prefix} + {hs}x{ws}')
    if (hs, ws) == (hd, wd):
        return table
    prefix, grid = table[:num_prefix], table[num_prefix:]
    c = grid.shape[-1]
    grid = grid.float().reshape(1, hs, ws, c).permute(0, 3, 1, 2)
    kwargs = {} if mode == 'nearest' else dict(align_corners=False)
    if mode in ('bilinear', 'bicubic') and antialias:
        kwargs['antialias'] = True
    grid = F.interpolate(grid, size=(hd, wd), mode=mode, **kwargs)
    grid = grid.permute(0, 2, 3, 1).reshape(hd * wd, c).to(table.dtype)
    return torch.cat([prefix, grid], dim=0)


class SizeCache:
    """Small LRU cache of per-size tensors derived from a module's weights.

    A value is cached only when it cannot carry gradients back to a
    trainable parameter (``torch.is_grad_enabled()`` and ``requires_grad``):
    while a positional table is being fine-tuned it is resized on every
    forward, which costs one small interpolation, so that the gradient
    reaches it and each optimiser step is seen. The key includes the
    tensor's storage and version counter, so loading new weights or an
    in-place update invalidates the entry.

    Attributes:
        num_computed (int): how many values were computed (tests count it).
    """

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._store: 'OrderedDict[Hashable, torch.Tensor]' = OrderedDict()
        self.num_computed = 0

    def clear(self):
        self._store.clear()

    def get(self, key: Hashable, source: torch.Tensor,
            compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Return ``compute()``, cached under ``key`` and the identity of
        ``source`` (the parameter the value is derived from)."""
        trainable = torch.is_grad_enabled() and source.requires_grad
        full_key = (key, source.data_ptr(), source._version, source.device,
                    source.dtype)
        if not trainable and full_key in self._store:
            self._store.move_to_end(full_key)
            return self._store[full_key]
        value = compute()
        self.num_computed += 1
        if not trainable:
            self._store[full_key] = value.detach()
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)
        return value


#: how a backbone fits its positional table to the feature grid
POS_EMBED_MODES = ('bicubic-per-forward', 'bilinear-once-trainable',
                   'bilinear-once-crop')


def check_pos_embed_mode(mode: str, size) -> Tuple[str, Tuple[int, int]]:
    """Validate a backbone's ``pos_embed_mode`` / ``pos_embed_size`` pair.

    Returns:
        tuple: the mode and ``size`` as ``(H, W)`` pixels (None for
        ``'bicubic-per-forward'``).
    """
    if mode not in POS_EMBED_MODES:
        raise ValueError(f'pos_embed_mode must be one of {POS_EMBED_MODES}, got {mode!r}')
    if mode == 'bicubic-per-forward':
        if size is not None:
            raise ValueError("pos_embed_size is only used with pos_embed_mode="
                             "'bilinear-once-trainable' or 'bilinear-once-crop'; remove it")
        return mode, None
    if size is None:
        raise ValueError(f"pos_embed_mode={mode!r} needs pos_embed_size, the training "
                         'input size in pixels (DenseCLIP: 512 for ADE20K RN50, 640 for '
                         'ViT-B/16, 1344 for COCO detection)')
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f'pos_embed_size must be an int or (H, W), got {size}')
    return mode, size


def replace_with_resized_table(owner: torch.nn.Module, name: str,
                               src_hw: Tuple[int, int], dst_hw: Tuple[int, int],
                               num_prefix: int = 1) -> None:
    """Resize the positional table ``owner.<name>`` once, bilinearly and
    without antialiasing, to ``dst_hw`` and make the result the trainable
    parameter (DenseCLIP's ``init_weights``: CLIP's 7x7 table becomes a
    16x16 one for 512-pixel training, and that table is what is trained
    and saved in the released checkpoints)."""
    old = getattr(owner, name)
    with torch.no_grad():
        new = resize_pos_table(old.detach(), src_hw, dst_hw, num_prefix,
                               'bilinear', antialias=False)
    param = torch.nn.Parameter(new.clone().contiguous(),
                               requires_grad=old.requires_grad)
    delattr(owner, name)
    owner.register_parameter(name, param)


def crop_pos_table(table: torch.Tensor, grid_hw: Tuple[int, int],
                   dst_hw: Tuple[int, int], num_prefix: int = 1) -> torch.Tensor:
    """The top-left ``dst_hw`` corner of a table's grid rows (DenseCLIP's
    detection attention pool: a large table, ``[:H, :W]`` each forward)."""
    (hs, ws), (hd, wd) = grid_hw, dst_hw
    if hd > hs or wd > ws:
        raise ValueError(
            f'feature grid {hd}x{wd} is larger than the positional table '
            f'({hs}x{ws}) of pos_embed_mode=\'bilinear-once-crop\'; raise '
            'pos_embed_size to at least the largest (padded) input size')
    prefix, grid = table[:num_prefix], table[num_prefix:]
    grid = grid.reshape(hs, ws, -1)[:hd, :wd].reshape(hd * wd, -1)
    return torch.cat([prefix, grid], dim=0)
