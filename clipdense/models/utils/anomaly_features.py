"""Dense features and windows for zero-shot anomaly detection, as small
functions over open_clip modules (no weights of their own).

* :func:`attnpool_vv` - the V-V attention of CLIP Surgery / AnoVL (Deng et
  al., 2023, Sec. 3.1) on a CLIP ResNet's attention pool: q and k replaced
  by v, ``c_proj(softmax(v v^T / sqrt(d)) v)``. The ResNet's only attention
  layer is the pool, so the "dual path" is this one layer; the pooled
  (global) embedding keeps the original q-k path.
* :func:`make_windows`, :func:`harmonic_aggregation` - WinCLIP's window
  masks (Jeong et al., CVPR 2023, Sec. 3.3) and their aggregation to
  patches.
* :func:`attnpool_windows`, :func:`vit_window_embeddings` - one joint-space
  embedding per window: the ResNet attention pool restricted to the
  window's positions; the ViT run on the class token and the window's
  patch tokens only (WinCLIP's token masking).
* :func:`anovl_views` - AnoVL's 22 augmented views for the image score.
"""
import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def _pool_tokens(attnpool: nn.Module, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    t = x.reshape(b, c, h * w).transpose(1, 2)  # (B, hw, C)
    t = torch.cat([t.mean(dim=1, keepdim=True), t], dim=1)
    return t + pos[None].to(t.dtype)


def attnpool_vv(attnpool: nn.Module, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """V-V attention over the CLIP ResNet attention pool.

    Args:
        attnpool (nn.Module): open_clip ``AttentionPool2d``.
        x (Tensor): ``(B, C, h, w)`` last-stage map.
        pos (Tensor): ``(1 + h*w, C)`` positional table for this size
            (``OpenCLIPResNet.pos_table(h, w)``).

    Returns:
        Tensor: ``(B, D, h, w)`` dense V-V embeddings.
    """
    b, _, h, w = x.shape
    t = _pool_tokens(attnpool, x, pos)
    v = attnpool.v_proj(t)
    heads = attnpool.num_heads
    v = v.reshape(b, v.shape[1], heads, -1).transpose(1, 2)  # (B, heads, N, d)
    o = F.scaled_dot_product_attention(v, v, v)
    o = attnpool.c_proj(o.transpose(1, 2).reshape(b, v.shape[2], -1))
    return o[:, 1:].transpose(1, 2).reshape(b, -1, h, w)


def make_windows(gh: int, gw: int, k: int, device=None) -> torch.Tensor:
    """Indices of the patches of every ``k x k`` window (stride 1) of a
    ``gh x gw`` grid, ``(num_windows, k*k)`` (row-major patch ids)."""
    if k < 1 or k > min(gh, gw):
        raise ValueError(f'window size {k} does not fit the {gh}x{gw} patch grid')
    ids = torch.arange(gh * gw, device=device).reshape(gh, gw)
    win = ids.unfold(0, k, 1).unfold(1, k, 1)  # (gh-k+1, gw-k+1, k, k)
    return win.reshape(-1, k * k)


def harmonic_aggregation(scores: torch.Tensor, windows: torch.Tensor,
                         num_patches: int) -> torch.Tensor:
    """WinCLIP's aggregation: each patch gets the harmonic mean of the
    scores of the windows that contain it.

    Args:
        scores (Tensor): ``(B, num_windows)`` positive scores.
        windows (Tensor): ``(num_windows, k*k)`` patch ids.
        num_patches (int): patches of the grid.

    Returns:
        Tensor: ``(B, num_patches)``.
    """
    b = scores.shape[0]
    inv = (1.0 / scores.clamp_min(1e-12)).repeat_interleave(windows.shape[1], dim=1)
    idx = windows.reshape(1, -1).expand(b, -1)
    total = scores.new_zeros(b, num_patches).scatter_add_(1, idx, inv)
    count = torch.bincount(windows.reshape(-1), minlength=num_patches).to(scores.dtype)
    return count / total.clamp_min(1e-12)


def attnpool_windows(attnpool: nn.Module, x: torch.Tensor, pos: torch.Tensor,
                     windows: torch.Tensor) -> torch.Tensor:
    """Attention pool restricted to each window's positions (the window's
    mean token as the query), ``(B, num_windows, D)``."""
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w).transpose(1, 2)  # (B, hw, C)
    nw, kk = windows.shape
    sub = flat[:, windows.reshape(-1)].reshape(b * nw, kk, c)
    p = pos.to(sub.dtype)
    sub = sub + p[1:][windows.reshape(-1)].reshape(1, nw, kk, c).expand(
        b, -1, -1, -1).reshape(b * nw, kk, c)
    query = flat[:, windows.reshape(-1)].reshape(b * nw, kk, c).mean(1, keepdim=True) + p[:1]
    t = torch.cat([query, sub], dim=1).transpose(0, 1)  # (1+kk, B*nw, C)
    out, _ = F.multi_head_attention_forward(
        query=t[:1], key=t, value=t, embed_dim_to_check=c,
        num_heads=attnpool.num_heads,
        q_proj_weight=attnpool.q_proj.weight, k_proj_weight=attnpool.k_proj.weight,
        v_proj_weight=attnpool.v_proj.weight, in_proj_weight=None,
        in_proj_bias=torch.cat([attnpool.q_proj.bias, attnpool.k_proj.bias,
                                attnpool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.,
        out_proj_weight=attnpool.c_proj.weight, out_proj_bias=attnpool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False)
    return out[0].reshape(b, nw, -1)


def vit_window_embeddings(backbone: nn.Module, img: torch.Tensor,
                          windows_list: Sequence[torch.Tensor],
                          chunk: int = 256) -> Tuple[torch.Tensor, ...]:
    """WinCLIP's window embeddings for an open_clip ViT (``OpenCLIPViT``):
    the tower runs on the class token plus the window's patch tokens (the
    others are masked out, i.e. dropped), pooled and projected as CLIP
    does.

    Args:
        backbone (OpenCLIPViT): an open_clip ``VisionTransformer`` tower.
        img (Tensor): ``(B, 3, H, W)``.
        windows_list (Sequence[Tensor]): per scale ``(num_windows, k*k)``.
        chunk (int): windows per tower call.

    Returns:
        tuple[Tensor]: per scale ``(B, num_windows, D)``.
    """
    if getattr(backbone, 'kind', None) != 'openclip':
        raise NotImplementedError(
            'WinCLIP windows on a ViT need an open_clip VisionTransformer tower '
            '(EVA towers with rotary embeddings are not supported)')
    x = backbone._pad(img)
    tokens, grid, _ = backbone._embed(x)
    b, n, c = tokens.shape
    outs = []
    for windows in windows_list:
        nw, kk = windows.shape
        res = []
        for s in range(0, nw, chunk):
            win = windows[s:s + chunk]
            m = win.shape[0]
            patches = tokens[:, 1:][:, win.reshape(-1)].reshape(b * m, kk, c)
            cls = tokens[:, :1].repeat_interleave(m, dim=0)
            t = torch.cat([cls, patches], dim=1)
            for i in range(len(backbone.blocks)):
                t = backbone._block(i, t, None)
            res.append(backbone._global(t).reshape(b, m, -1))
        outs.append(torch.cat(res, dim=1))
    return tuple(outs)


# AnoVL's test-time views for the image score (vl_test.py, utils.aug): the
# original, 8 small rotations, 8 translations, h-flip, greyscale, 3 x 90
# degrees.
_ROTATIONS = tuple(s * k * math.pi / 16 for k in (1, 2, 3, 4) for s in (1, -1))
# clipdense's earlier reading: shifts along the axes by 10% and 20% of the side
_SHIFTS = tuple((s * d, 0.0) for d in (0.1, 0.2) for s in (1, -1)) + \
    tuple((0.0, s * d) for d in (0.1, 0.2) for s in (1, -1))
# the authors': affine_grid translations (0.2, 0.2), (-0.2, 0.2), ... and
# (0.1, 0.1), ... in [-1, 1] coordinates, i.e. diagonal shifts by 10% and
# 5% of the side
_AUTHORS_TRANSLATIONS = tuple((s1 * d, s2 * d) for d in (0.2, 0.1)
                              for s1, s2 in ((1, 1), (-1, 1), (-1, -1), (1, -1)))
VIEW_STYLES = ('authors', 'clipdense')


def anovl_views(img: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                style: str = 'authors') -> torch.Tensor:
    """AnoVL's 22 augmented views of normalised images.

    ``style='authors'`` (hq-deng/AnoVL ``utils.aug``): rotations by
    ``+-pi/16 ... +-pi/4`` and diagonal translations by 10% and 5% of the
    side, resampled with reflection padding and ``align_corners=True``; the
    greyscale view is the luma of the *normalised* image (kornia's
    ``rgb_to_grayscale`` on the network input). ``'clipdense'``: the same
    rotations, translations along the axes by 10% and 20%,
    ``align_corners=False``, and the greyscale view made in pixel space
    (``mean``/``std`` of the normalisation) and normalised again. The
    authors shuffle the views; their order does not change the mean.

    Args:
        img (Tensor): ``(B, 3, H, W)`` normalised images.
        mean, std (Tensor): ``(3,)`` (or broadcastable) normalisation.
        style (str): ``'authors'`` or ``'clipdense'``.

    Returns:
        Tensor: ``(22, B, 3, H, W)``; view 0 is the input (19 views for a
        non-square input: the 90-degree turns are left out).
    """
    if style not in VIEW_STYLES:
        raise ValueError(f'view style must be one of {VIEW_STYLES}, got {style!r}')
    authors = style == 'authors'
    b = img.shape[0]
    thetas = []
    for a in _ROTATIONS:
        thetas.append([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    if authors:
        for tx, ty in _AUTHORS_TRANSLATIONS:
            thetas.append([[1.0, 0.0, tx], [0.0, 1.0, ty]])
    else:
        for dx, dy in _SHIFTS:
            # affine_grid works in [-1, 1]: a shift of a fraction f of the side is 2f
            thetas.append([[1.0, 0.0, -2 * dx], [0.0, 1.0, -2 * dy]])
    theta = torch.tensor(thetas, dtype=img.dtype, device=img.device)  # (16, 2, 3)
    nv = theta.shape[0]
    src = img.unsqueeze(0).expand(nv, -1, -1, -1, -1).reshape(nv * b, *img.shape[1:])
    grid = F.affine_grid(theta.repeat_interleave(b, dim=0), list(src.shape),
                         align_corners=authors)
    warped = F.grid_sample(src, grid, mode='bilinear', padding_mode='reflection',
                           align_corners=authors).reshape(nv, b, *img.shape[1:])
    if authors:
        lum = 0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3]
        grey = lum.expand(-1, 3, -1, -1)
    else:
        mean = mean.reshape(1, 3, 1, 1).to(img)
        std = std.reshape(1, 3, 1, 1).to(img)
        raw = img * std + mean
        lum = (0.299 * raw[:, 0:1] + 0.587 * raw[:, 1:2] + 0.114 * raw[:, 2:3])
        grey = (lum.expand(-1, 3, -1, -1) - mean) / std
    views = [img[None], warped, img.flip(-1)[None], grey[None]]
    views += [torch.rot90(img, k, dims=(-2, -1))[None] for k in (1, 2, 3)]
    h, w = img.shape[-2:]
    if h != w:  # 90-degree turns change a non-square shape: keep the 19 others
        views = views[:-3]
    return torch.cat(views, dim=0)
