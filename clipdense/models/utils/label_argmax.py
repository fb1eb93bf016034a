"""Labels of upsampled logits without the upsampled logits.

mmseg turns a head's low-resolution logits ``(K, h, w)`` into labels by
resizing them bilinearly to the padded input, cropping the padding, resizing
again to the original image and taking the argmax over ``K``. With a large
vocabulary (1,000 classes at 512x512: 1 GiB of fp32) the resizes and the
argmax cost more than the network. Both resizes are linear and separable with
non-negative weights, so every output pixel is a convex combination of a few
low-resolution logits:

``z[c, y, x] = sum_i sum_j Ay[y, i] Ax[x, j] L[c, i, j]``

with ``Ay`` ``(H, h)`` and ``Ax`` ``(W, w)`` (:func:`resize_matrix` builds
them by pushing an identity through the very resize calls mmseg makes). For
the pixels that share one support (the rows ``i`` and columns ``j`` with
non-zero weight), ``z[c]`` lies between the minimum and the maximum of
``L[c]`` over the support; a class whose maximum is below the best minimum
of another class can never win there. :func:`bilinear_argmax` keeps only the
classes that can win (usually one to a few), evaluates ``z`` for them
exactly and returns the argmax: the labels mmseg would give, up to float
rounding at exact ties, in time that barely grows with ``K``.
"""
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _resize_1d(m: Tensor, size: int, align_corners: bool) -> Tensor:
    """Resize the rows of ``m`` ``(n, k)`` (as an image column) to ``size``
    rows with bilinear interpolation: ``(size, k)``."""
    n, k = m.shape
    if n == size:
        # mmseg's resize (F.interpolate) to the same size returns the input
        return m
    t = m.t().reshape(1, k, n, 1)
    out = F.interpolate(t, size=(size, 1), mode='bilinear',
                        align_corners=align_corners)
    return out.reshape(k, size).t()


def resize_matrix(n_in: int, steps: Sequence[tuple], *,
                  align_corners: bool = False,
                  device=None, dtype=torch.float32) -> Tensor:
    """The ``(n_out, n_in)`` matrix of a chain of 1-D operations.

    Args:
        n_in (int): input length.
        steps (list[tuple]): ``('resize', size)``, ``('crop', start, stop)``
            or ``('flip',)``, applied in order.
        align_corners (bool): of the bilinear resizes.

    Returns:
        Tensor: ``A`` with ``out = A @ in`` for a 1-D signal.
    """
    m = torch.eye(n_in, device=device, dtype=dtype)
    for step in steps:
        if step[0] == 'resize':
            m = _resize_1d(m, int(step[1]), align_corners)
        elif step[0] == 'crop':
            m = m[int(step[1]):int(step[2])]
        elif step[0] == 'flip':
            m = m.flip(0)
        else:
            raise ValueError(f'unknown step {step!r}')
    return m.contiguous()


def _tiles(a: Tensor, max_len: int, tol: float = 1e-6):
    """Split the rows of ``a`` ``(n, m)`` into consecutive tiles whose rows
    are convex combinations of the tile's first and last row, so that any
    ``a[y] @ v`` inside a tile lies between its values at the two ends.

    Returns:
        tuple: ``starts``, ``stops`` (inclusive), int64 tensors.
    """
    n = a.shape[0]
    a64 = a.double()
    starts, stops = [], []
    y0 = 0
    while y0 < n:
        length = min(max_len, n - y0)
        while length > 2:
            y1 = y0 + length - 1
            seg = a64[y0:y1 + 1]
            d = seg[-1] - seg[0]
            dd = float(d @ d)
            rel = seg - seg[0]
            t = (rel @ d) / dd if dd > 0 else torch.zeros(length, dtype=a64.dtype)
            # rows on the segment between the end rows, in order (so that
            # any sub-range is again bounded by its own end rows)
            ok = bool(((rel - t[:, None] * d).abs().max() <= tol)
                      and (t >= -tol).all() and (t <= 1 + tol).all()
                      and (t[1:] >= t[:-1] - tol).all())
            if ok:
                break
            length //= 2
        starts.append(y0)
        stops.append(y0 + length - 1)
        y0 += length
    return torch.tensor(starts), torch.tensor(stops)


def _tile_weights(a: Tensor, starts: Tensor, stops: Tensor, tile: int):
    """Per tile: the weights ``(tiles, tile, s)`` of its rows over the
    window of ``s`` inputs it reads, the window's indices ``(tiles, s)`` and
    the output rows ``(tiles, tile)`` (short tiles repeat their last row)."""
    n, m = a.shape
    nz = a != 0
    if not bool(nz.any(dim=1).all()):
        raise ValueError('a resize matrix has an all-zero row')
    ar = torch.arange(m, device=a.device)
    first = torch.where(nz, ar, m).amin(dim=1)
    last = torch.where(nz, ar, -1).amax(dim=1)
    lo = torch.minimum(first[starts], first[stops])
    hi = torch.maximum(last[starts], last[stops])
    s = int((hi - lo).max()) + 1
    off = torch.arange(s, device=a.device)
    idx = (lo[:, None] + off).clamp(max=m - 1)  # (tiles, s)
    valid = (lo[:, None] + off) <= hi[:, None]
    rows = torch.minimum(starts[:, None] + torch.arange(tile, device=a.device),
                         stops[:, None])  # (tiles, tile)
    wts = a[rows[:, :, None], idx[:, None, :]] * valid[:, None, :]
    return wts, idx, rows


def bilinear_argmax(logits: Tensor, ay: Tensor, ax: Tensor, *,
                    tile: int = 8, chunk: int = 1 << 22) -> Tensor:
    """``argmax_c (Ay @ logits[c] @ Ax^T)`` without forming all classes.

    The output is cut into tiles (at most ``tile`` x ``tile`` pixels) over
    which every class's value is bilinear in the two tile coordinates, so
    its extremes are at the tile's four corners. Every class is evaluated
    at the corners only; a class whose best corner is below another class's
    worst corner cannot win anywhere in the tile. Tiles with one possible
    class (the interior of regions) are labelled at once; in the others
    each pixel evaluates the remaining classes exactly.

    Args:
        logits (Tensor): ``(K, h, w)``.
        ay (Tensor): ``(H, h)`` non-negative row weights.
        ax (Tensor): ``(W, w)`` non-negative column weights.
        tile (int): largest tile side.
        chunk (int): bound on the elements of the per-pixel candidate
            tensors (memory stays bounded for any ``K``).

    Returns:
        Tensor: ``(H, W)`` int64 labels.
    """
    if logits.dim() != 3:
        raise ValueError(f'logits must be (K, h, w), got {tuple(logits.shape)}')
    k, h, w = logits.shape
    if ay.dim() != 2 or ax.dim() != 2 or ay.shape[1] != h or ax.shape[1] != w:
        raise ValueError(f'resize matrices {tuple(ay.shape)}, {tuple(ax.shape)} do '
                         f'not match logits {tuple(logits.shape)}')
    if bool((ay < 0).any()) or bool((ax < 0).any()):
        raise ValueError('bilinear_argmax needs non-negative weights')
    dev = logits.device
    logits = logits.float()
    ay, ax = ay.to(logits), ax.to(logits)
    H, W = ay.shape[0], ax.shape[0]
    ys0, ys1 = (t.to(dev) for t in _tiles(ay.cpu(), tile))
    xs0, xs1 = (t.to(dev) for t in _tiles(ax.cpu(), tile))
    nty, ntx = ys0.numel(), xs0.numel()
    # every class at the tile corners, (2 nty, K, 2 ntx): tile starts first
    yc = torch.cat([ys0, ys1])
    xc = torch.cat([xs0, xs1])
    zy = ay[yc] @ logits.permute(1, 0, 2).reshape(h, k * w)  # (Yc, K*w)
    zc = (zy.reshape(-1, w) @ ax[xc].t()).reshape(2 * nty, k, 2 * ntx)
    c00, c01 = zc[:nty, :, :ntx], zc[:nty, :, ntx:]
    c10, c11 = zc[nty:, :, :ntx], zc[nty:, :, ntx:]
    upper = torch.maximum(torch.maximum(c00, c01), torch.maximum(c10, c11))
    lower = torch.minimum(torch.minimum(c00, c01), torch.minimum(c10, c11))
    del zy, zc, c00, c01, c10, c11
    floor, sure = lower.max(dim=1)  # (nty, ntx): best worst case, its class
    del lower
    n_cand = (upper >= floor[:, None, :]).sum(dim=1)  # (nty, ntx), >= 1
    # tile index of every output row / column
    row_tile = torch.repeat_interleave(torch.arange(nty, device=dev),
                                       ys1 - ys0 + 1)
    col_tile = torch.repeat_interleave(torch.arange(ntx, device=dev),
                                       xs1 - xs0 + 1)
    out = sure[row_tile][:, col_tile]
    open_t = (n_cand > 1).nonzero(as_tuple=True)
    if open_t[0].numel() == 0:
        return out
    # exact values of the possible classes in the open tiles: each tile's
    # pixels read the logits of one small window (the union of the supports
    # of its first and last row / column), so a tile is a tiny matmul
    wy_t, iy_t, ry_t = _tile_weights(ay, ys0, ys1, tile)  # (ty,T,s) (ty,s) (ty,T)
    wx_t, ix_t, rx_t = _tile_weights(ax, xs0, xs1, tile)
    # the logits of every distinct window: (K * windows, sy*sx)
    win_y, wy_of = torch.unique(iy_t, dim=0, return_inverse=True)
    win_x, wx_of = torch.unique(ix_t, dim=0, return_inverse=True)
    nwx, n_win = win_x.shape[0], win_y.shape[0] * win_x.shape[0]
    windows = logits[:, win_y[:, :, None, None], win_x[None, None, :, :]]
    windows = windows.permute(0, 1, 3, 2, 4).reshape(-1, win_y.shape[1] * win_x.shape[1])
    upper_t = upper.permute(0, 2, 1)  # (nty, ntx, K)
    counts = n_cand[open_t]
    # buckets of similar candidate counts (ratio 1.25): little padding
    bucket = torch.ceil(torch.log(counts.double()) / math.log(1.25)).long()
    for b in bucket.unique().tolist():
        sel = (bucket == b).nonzero(as_tuple=True)[0]
        n = min(int(counts[sel].max()), k)
        step = max(1, chunk // (n * tile * tile))
        for s0 in range(0, sel.numel(), step):
            ty, tx = open_t[0][sel[s0:s0 + step]], open_t[1][sel[s0:s0 + step]]
            # the n largest upper bounds contain every class that can win;
            # extra ones (tiles with fewer) cannot win and change nothing
            cand = upper_t[ty, tx].topk(n, dim=1).indices  # (t, n)
            win = wy_of[ty] * nwx + wx_of[tx]  # (t,)
            patch = windows[cand * n_win + win[:, None]]  # (t, n, sy*sx)
            wts = (wy_t[ty][:, :, None, :, None] * wx_t[tx][:, None, :, None, :])
            # (t, T*T pixels, sy*sx) @ (t, sy*sx, n): values of the candidates
            z = torch.bmm(wts.reshape(wts.shape[0], tile * tile, -1),
                          patch.transpose(1, 2))
            best = cand.gather(1, z.argmax(dim=2)).view(-1, tile, tile)
            out[ry_t[ty][:, :, None], rx_t[tx][:, None, :]] = best
    return out


def mmseg_resize_matrices(low_hw, pad_hw, padding, ori_hw, *, flip=None,
                          align_corners=False, device=None):
    """``Ay``, ``Ax`` of mmseg's whole-image path: the head's resize to the
    padded input, the padding crop, an optional flip, the resize to the
    original shape (``EncoderDecoder.postprocess_result``).

    Args:
        low_hw (tuple): logits size ``(h, w)``.
        pad_hw (tuple): the padded input size the head resizes to.
        padding (list): ``[left, right, top, bottom]`` padding.
        ori_hw (tuple): original image size.
        flip (str, optional): ``'horizontal'`` / ``'vertical'``.
    """
    left, right, top, bottom = padding
    ys = [('resize', pad_hw[0]), ('crop', top, pad_hw[0] - bottom)]
    xs = [('resize', pad_hw[1]), ('crop', left, pad_hw[1] - right)]
    if flip == 'vertical':
        ys.append(('flip',))
    elif flip == 'horizontal':
        xs.append(('flip',))
    ys.append(('resize', ori_hw[0]))
    xs.append(('resize', ori_hw[1]))
    ay = resize_matrix(low_hw[0], ys, align_corners=align_corners, device=device)
    ax = resize_matrix(low_hw[1], xs, align_corners=align_corners, device=device)
    return ay, ax


def upsample_argmax_reference(logits: Tensor, ay: Tensor, ax: Tensor) -> Tensor:
    """The dense computation :func:`bilinear_argmax` avoids (for tests)."""
    z = torch.einsum('yi,cij,xj->cyx', ay.to(logits), logits, ax.to(logits))
    return z.argmax(dim=0)
