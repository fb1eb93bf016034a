"""Reduced-precision inference contexts.

``fp32`` runs as is. ``bf16`` autocasts matmuls and convolutions to
bfloat16 on the CPU (oneDNN uses AVX512-BF16/AMX where the CPU has them) and
on CUDA; ``fp16`` autocasts to float16 and is offered on CUDA only, since CPU
float16 kernels are not accelerated and would be slower than fp32.
Softmax, norms and reductions stay in fp32 under autocast, and the outputs
are cast back to fp32 by the callers that compare them.
"""
import contextlib
from typing import Union

import torch

PRECISIONS = ('fp32', 'bf16', 'fp16')


def device_type(device: Union[str, torch.device]) -> str:
    return torch.device(device).type


def check_precision(precision: str, device: Union[str, torch.device]) -> None:
    """Raise a ``ValueError`` naming the fix for an unusable combination."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, '
                         f'got {precision!r}')
    kind = device_type(device)
    if precision == 'fp16' and kind != 'cuda':
        raise ValueError(
            f'fp16 inference is offered on CUDA only (device {device!r}); '
            'on the CPU use --precision bf16')
    if precision == 'bf16' and kind == 'cuda' and \
            not torch.cuda.is_bf16_supported():
        raise ValueError('this GPU has no bfloat16 support; use fp16')


def autocast_context(precision: str, device: Union[str, torch.device]):
    """A context manager running the enclosed forward in ``precision``."""
    check_precision(precision, device)
    if precision == 'fp32':
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == 'bf16' else torch.float16
    return torch.autocast(device_type=device_type(device), dtype=dtype)
