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
            ``F.interpolate``, as mmseg 0.x models (MaskCLIP) resized.

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
