"""The one cache of text embeddings (class names, prompts, expressions).

A frozen text tower gives the same embedding for the same text, so every
open-vocabulary model encodes a text once and reuses it; the key holds the
tower's weights (``weights_key()`` of the text encoder) so that loading
other weights, or an optimizer step on learnable prompts, recomputes.
"""
from collections import OrderedDict
from typing import Callable, Hashable, Optional

import torch


class TextEmbeddingCache:
    """A least-recently-used store of detached text embeddings.

    :meth:`get` returns a cached value (a copy: callers may change it in
    place) or computes, stores and returns it. The computation runs under
    ``torch.no_grad()``: nothing cached carries a graph. With
    ``trainable=True`` (a text tower or prompts that learn, gradients on)
    the value is computed with gradients and neither read from nor written
    to the cache.

    Args:
        max_size (int): entries kept; the least recently used go first
            (0: nothing is kept between calls).
    """

    def __init__(self, max_size: int = 8):
        if int(max_size) < 0:
            raise ValueError(f'max_size must be >= 0, got {max_size}')
        self.max_size = int(max_size)
        self._store: 'OrderedDict[Hashable, torch.Tensor]' = OrderedDict()

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key) -> bool:
        return key in self._store

    def clear(self) -> None:
        self._store.clear()

    def lookup(self, key) -> Optional[torch.Tensor]:
        """The stored value (not a copy) or None; marks it recently used."""
        if key not in self._store:
            return None
        self._store.move_to_end(key)
        return self._store[key]

    def put(self, key, value: torch.Tensor, trim: bool = True) -> None:
        """Store a detached copy of ``value``; drop the oldest entries
        (``trim=False``: later, by :meth:`trim`, e.g. after a batch larger
        than the cache has been read back)."""
        self._store[key] = value.detach().clone()
        self._store.move_to_end(key)
        if trim:
            self.trim()

    def trim(self) -> None:
        """Drop the least recently used entries above ``max_size``."""
        while len(self._store) > self.max_size:
            self._store.popitem(last=False)

    def get(self, key, compute: Callable[[], torch.Tensor], *,
            trainable: bool = False) -> torch.Tensor:
        """The embedding of ``key``, computed by ``compute()`` on a miss."""
        if trainable:
            return compute()
        hit = self.lookup(key)
        if hit is not None:
            return hit.clone()
        with torch.no_grad():
            value = compute()
        self.put(key, value)
        return value
