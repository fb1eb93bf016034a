"""Seeded weights shared by the golden-fixture generators under
``tools/golden/`` and the tests that compare clipdense with them.

A generator builds the authors' model, a test builds clipdense's; both fill
the same parameter names with :func:`fill_seeded`, so no weight file has to
be committed. Only ``torch`` is imported here (the generators load this
file by path, next to the authors' code).
"""
import math

import torch


def _scale(name: str, t: torch.Tensor) -> torch.Tensor:
    if t.ndim <= 1:
        if name.endswith('weight') and any(n in name for n in ('ln', 'norm', 'bn')):
            return None  # a norm's gain: 1 + 0.1 r
        return torch.tensor(0.02, device='cpu')
    if name.endswith(('token_embedding.weight', 'positional_embedding',
                      'class_embedding')):
        return torch.tensor(0.1, device='cpu')
    if name in ('visual.proj', 'text_projection'):
        return torch.tensor(1.0 / math.sqrt(t.shape[0]), device='cpu')
    return torch.tensor(1.0 / math.sqrt(max(1, t[0].numel())), device='cpu')


@torch.no_grad()
def seeded_state_dict(names_shapes, seed: int = 0) -> dict:
    """Deterministic weights for ``(name, shape)`` pairs, drawn in sorted
    name order from one generator: Gaussian, scaled by ``1/sqrt(fan_in)``
    (matrices), 0.1 (embeddings), 0.02 (biases); norm gains ``1 + 0.1 r``.

    Args:
        names_shapes (Iterable[tuple[str, tuple]]): floating parameters.
        seed (int): generator seed.

    Returns:
        dict: name -> float32 tensor.
    """
    g = torch.Generator().manual_seed(int(seed))
    out = {}
    for name, shape in sorted(names_shapes):
        r = torch.randn(tuple(shape), generator=g, device='cpu')
        if name.endswith('logit_scale'):
            out[name] = torch.full(tuple(shape), math.log(1 / 0.07), device='cpu')
            continue
        s = _scale(name, r)
        out[name] = 1.0 + 0.1 * r if s is None else r * s
    return out


@torch.no_grad()
def fill_seeded(module: torch.nn.Module, seed: int = 0, prefix: str = '') -> list:
    """Overwrite every floating parameter/buffer of ``module`` whose name
    starts with ``prefix`` with :func:`seeded_state_dict` values (BN
    running statistics excluded). Returns the sorted names filled."""
    sd = module.state_dict()
    names = [(k, tuple(v.shape)) for k, v in sd.items()
             if v.is_floating_point() and k.startswith(prefix)
             and not k.endswith(('running_mean', 'running_var'))]
    new = seeded_state_dict(names, seed)
    for k, v in new.items():
        sd[k].copy_(v)
    return sorted(new)
