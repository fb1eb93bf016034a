"""Freezing of CLIP towers in a way MMEngine optimisers understand.

Frozen parameters get ``requires_grad=False``; MMEngine's default optimiser
constructor still puts them into param groups (so ``paramwise_cfg``
``custom_keys`` and ``lr_mult`` keep matching by name) but they never receive
a gradient, so no optimiser step changes them.
"""
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

FREEZE_MODES = ('none', 'all', 'all_but_norms')
# parameter names of positional tables across open_clip / timm towers
POS_EMBED_NAMES = ('positional_embedding', 'pos_embed')


def is_norm_module(m: nn.Module) -> bool:
    """BatchNorm/LayerNorm/GroupNorm and the norm classes of open_clip/timm
    (``LayerNorm``, ``LayerNormFp32``, ``RmsNorm`` ...)."""
    return isinstance(m, (_BatchNorm, nn.LayerNorm, nn.GroupNorm)) or \
        type(m).__name__.lower().endswith('norm') or 'norm2d' in type(m).__name__.lower()


def check_freeze_mode(freeze) -> str:
    if freeze is True:
        return 'all'
    if freeze is False or freeze is None:
        return 'none'
    if freeze not in FREEZE_MODES:
        raise ValueError(f'freeze must be one of {FREEZE_MODES}, got {freeze!r}')
    return freeze


def apply_freeze(module: nn.Module, mode: str) -> None:
    """Set ``requires_grad`` of ``module``'s parameters for a freeze mode.

    Args:
        module (nn.Module): the tower.
        mode (str): ``'none'`` (all trainable), ``'all'`` (nothing
            trainable) or ``'all_but_norms'`` (only normalisation layers and
            positional tables trainable, as in LN-tuning / VLTSeg-style warm
            starts).
    """
    mode = check_freeze_mode(mode)
    if mode == 'none':
        for p in module.parameters():
            p.requires_grad_(True)
        return
    for p in module.parameters():
        p.requires_grad_(False)
    if mode == 'all_but_norms':
        for m in module.modules():
            if is_norm_module(m):
                for p in m.parameters(recurse=False):
                    p.requires_grad_(True)
        for name, p in module.named_parameters():
            if name.rsplit('.', 1)[-1] in POS_EMBED_NAMES:
                p.requires_grad_(True)


def set_batchnorm_eval(module: nn.Module) -> None:
    """Keep BatchNorm running statistics fixed (call after ``train()``)."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
