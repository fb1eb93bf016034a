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
them by pushing an identity through the very resize calls mmseg makes).
:func:`bilinear_argmax` cuts the output into small tiles over which every
``z[c]`` is bilinear between its values at the tile's four corners. A class
that another class beats at all four corners beats nowhere in the tile, so
after comparing all classes at the corners only a handful per tile remain
(about 22 of 1,000 in a 9x9 tile for the near-uniform, noisy logits of a
random-weight MaskCLIP ViT-B/16 at 512x512), and only those are evaluated
per pixel. The result is mmseg's labels, ties included (the first of equal
classes), up to float rounding at near-ties, in time that barely grows
with ``K``.
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


class _Axis:
    """One output axis cut into tiles. The rows of tile ``t`` are convex
    combinations ``(1 - f) C[a] + f C[b]`` of two corner vectors of the
    input axis, ``a = t`` and ``b = t + 1`` on a grid of shared corners
    (``shared``), else ``a = t`` and ``b = nt + t``.

    Attributes:
        corners (Tensor): ``(R, m)`` corner vectors.
        rows (Tensor): ``(nt, T)`` the rows of each tile; short tiles are
            padded with ``n_rows`` (a scratch row).
        frac (Tensor): ``(nt, T)`` their ``f``.
        inv (Tensor | None): output row -> computed row, when equal rows
            are computed once.
    """

    def __init__(self, corners, shared, rows, frac, n_rows, inv=None):
        self.corners = corners
        self.shared = shared
        self.rows = rows
        self.frac = frac
        self.n_rows = n_rows
        self.inv = inv
        self.nt = rows.shape[0]

    def tile_corners(self, t0: int, t1: int):
        """The corners of tiles ``t0 .. t1 - 1`` and the offset of their
        second corners in that selection."""
        if self.shared:
            return self.corners[t0:t1 + 1], 1
        return torch.cat([self.corners[t0:t1],
                          self.corners[self.nt + t0:self.nt + t1]]), t1 - t0


def _lerp_axis(a: Tensor, tile: int, tol: float = 1e-6):
    """Tiles between shared grid corners when every row of ``a`` is a lerp
    of two neighbouring inputs (one bilinear resize, crops and flips: the
    usual whole-image geometry); ``None`` otherwise.

    A row is a position ``p = i + f`` on the input axis. The corners are the
    lerps at multiples of ``spacing`` (1, 1/2, 1/4, ...: the coarsest giving
    about ``tile`` distinct rows per tile), so neighbouring tiles share
    corners and a tile never straddles two input cells."""
    n, m = a.shape
    a64 = a.double()
    rng = torch.arange(n)
    nz = a64 > tol
    if not bool(nz.any(dim=1).all()):
        return None
    i = torch.where(nz, torch.arange(m), m).amin(dim=1).clamp(max=max(m - 2, 0))
    f = a64[rng, i + 1] if m > 1 else torch.zeros(n, dtype=a64.dtype)
    lerp = torch.zeros_like(a64)
    lerp[rng, i] = 1 - f
    if m > 1:
        lerp[rng, i + 1] += f
    if float((lerp - a64).abs().max()) > tol:
        return None
    # equal rows (the clamped borders of align_corners=False) once
    pos, inv = torch.unique(i.double() + f, return_inverse=True)
    nu = pos.numel()
    for q in range(8):
        spacing = 0.5 ** q
        nseg = max(1, math.ceil((m - 1) / spacing - 1e-9))
        seg = ((pos / spacing).floor().long()).clamp(0, nseg - 1)
        counts = torch.bincount(seg, minlength=nseg)
        if int(counts.max()) <= tile + tile // 4:
            break
    gpos = (torch.arange(nseg + 1, dtype=a64.dtype) * spacing).clamp(max=m - 1)
    gi = gpos.floor().long().clamp(max=max(m - 2, 0))
    gf = gpos - gi
    corners = torch.zeros(nseg + 1, m, dtype=a64.dtype)
    corners[torch.arange(nseg + 1), gi] = 1 - gf
    if m > 1:
        corners[torch.arange(nseg + 1), gi + 1] += gf
    width = int(counts.max())
    slot = torch.arange(nu) - (torch.cumsum(counts, 0) - counts)[seg]  # pos is sorted
    rows = torch.full((nseg, width), nu, dtype=torch.long)
    rows[seg, slot] = torch.arange(nu)
    length = (gpos[1:] - gpos[:-1])[seg]
    frac = torch.zeros(nseg, width, dtype=a64.dtype)
    frac[seg, slot] = ((pos - gpos[seg]) /
                       torch.where(length > 0, length, torch.ones_like(length))).clamp(0, 1)
    return _Axis(corners.to(a.dtype), True, rows, frac.to(a.dtype), nu, inv)


def _general_axis(a: Tensor, tile: int):
    """Tiles of :func:`_tiles` (any non-negative ``a``), each with its own
    two corners: its first and last row."""
    starts, stops = _tiles(a, tile)
    rows = torch.minimum(starts[:, None] + torch.arange(tile), stops[:, None])
    a64 = a.double()
    d = a64[stops] - a64[starts]
    dd = (d * d).sum(dim=1)
    rel = a64[rows] - a64[starts][:, None, :]
    frac = (rel * d[:, None, :]).sum(dim=2) / torch.where(
        dd > 0, dd, torch.ones_like(dd))[:, None]
    return _Axis(torch.cat([a[starts], a[stops]]), False, rows,
                 frac.clamp(0, 1).to(a.dtype), a.shape[0])


def bilinear_argmax(logits: Tensor, ay: Tensor, ax: Tensor, *,
                    tile: int = 8, chunk: int = 1 << 22) -> Tensor:
    """``argmax_c (Ay @ logits[c] @ Ax^T)`` without forming all classes.

    The output is cut into tiles (about ``tile`` x ``tile`` pixels) over
    which every class's value is bilinear in the two tile coordinates:
    ``z_c = w . V_c`` with ``V_c`` its values at the tile's four corners and
    ``w`` convex weights. A class whose corner values are all below those
    of another class can win no pixel of the tile. Every class is compared
    at the corners with the class best at the tile's centre, the survivors
    with each corner's best class. Tiles left with one class are labelled
    at once; in the others each pixel evaluates its tile's few remaining
    classes, and of equal values the first class wins, as in mmseg's
    argmax. Rounding: the evaluation interpolates the corner values, so a
    near-tie within float precision may go either way, as between mmseg's
    own resize and a dense einsum.

    Args:
        logits (Tensor): ``(K, h, w)``.
        ay (Tensor): ``(H, h)`` non-negative row weights.
        ax (Tensor): ``(W, w)`` non-negative column weights.
        tile (int): tile side.
        chunk (int): bound on the corner values held at once (elements);
            memory stays bounded for any ``K`` and image size.

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
    if int(tile) < 1 or int(chunk) < 1:
        raise ValueError(f'tile and chunk must be positive, got tile={tile}, '
                         f'chunk={chunk}')
    if not bool((ay != 0).any(dim=1).all()) or not bool((ax != 0).any(dim=1).all()):
        raise ValueError('a resize matrix has an all-zero row')
    dev = logits.device
    logits = logits.float()
    axes = []
    for a in (ay, ax):
        a = a.detach().float().cpu()
        axes.append(_lerp_axis(a, tile) or _general_axis(a, tile))
    yax, xax = axes
    ty_len, tx_len = yax.rows.shape[1], xax.rows.shape[1]
    npx = ty_len * tx_len
    ntx, ox = xax.nt, (1 if xax.shared else xax.nt)
    cx = xax.corners.to(dev)
    lt = logits.permute(1, 2, 0).reshape(h, w * k)
    # 1. per band of tile rows: the classes that can win in each tile
    # (tile index, class, values at the four corners), sorted by tile
    step = max(1, chunk // (2 * cx.shape[0] * k))
    labels, cands = [], []
    for t0 in range(0, yax.nt, step):
        t1 = min(yax.nt, t0 + step)
        lab, (ptile, pc, v) = _tile_candidates(lt, k, w, yax, t0, t1, cx, ox,
                                               ntx, npx)
        labels.append(lab)
        cands.append((ptile + t0 * ntx, pc, v))
    labels = torch.cat(labels)
    ptile, pc, v = (torch.cat(t) for t in zip(*cands))
    # 2. the open tiles (more than one class), in buckets of similar counts
    # (ratio 1.25); a short list repeats its last class, which changes no
    # argmax; bounded batches
    fx, fy = xax.frac.to(dev), yax.frac.to(dev)
    tiles, counts = torch.unique_consecutive(ptile, return_counts=True)
    first = torch.cumsum(counts, 0) - counts
    bucket = torch.ceil(torch.log(counts.double()) / math.log(1.25)).long()
    for b in bucket.unique().tolist():
        in_b = (bucket == b).nonzero(as_tuple=True)[0]
        m = int(counts[in_b].max())
        batch = max(1, chunk // (m * npx))
        for i in range(0, in_b.numel(), batch):
            sel = in_b[i:i + batch]
            idx = first[sel][:, None] + torch.minimum(
                torch.arange(m, device=dev), counts[sel][:, None] - 1)  # (t, m)
            vb = v[idx]
            tb = tiles[sel]
            u = fx[tb % ntx][:, :, None]  # (t, Tx, 1)
            s = fy[tb // ntx][:, :, None, None]  # (t, Ty, 1, 1)
            v00, v01, v10, v11 = (vb[:, None, :, j] for j in range(4))  # (t, 1, m)
            top = torch.addcmul(v00, u, v01 - v00)  # (t, Tx, m)
            bottom = torch.addcmul(v10, u, v11 - v10)
            z = torch.addcmul(top[:, None], s, (bottom - top)[:, None])  # (t, Ty, Tx, m)
            win = z.view(-1, npx, m).max(dim=2).indices  # the first of equal
            labels[tb] = pc[idx].gather(1, win)
    # one scratch row and column take the padding of short tiles
    out = torch.empty(yax.n_rows + 1, xax.n_rows + 1, dtype=torch.long,
                      device=dev)
    out[yax.rows.to(dev)[:, None, :, None], xax.rows.to(dev)[None, :, None, :]] = \
        labels.view(yax.nt, ntx, ty_len, tx_len)
    out = out[:yax.n_rows, :xax.n_rows]
    if yax.inv is not None:
        out = out[yax.inv.to(dev)]
    if xax.inv is not None:
        out = out[:, xax.inv.to(dev)]
    return out


def _tile_candidates(lt, k, w, yax, t0, t1, cx, ox, ntx, npx):
    """For the tiles in tile rows ``t0 .. t1 - 1``: labels ``(n * ntx,
    npx)`` of the tiles with one possible class, and the candidates of the
    others: tile index (in this band), class and corner values ``(P, 4)``,
    sorted by tile then class (see :func:`bilinear_argmax`)."""
    dev = lt.device
    n = t1 - t0
    cy, oy = yax.tile_corners(t0, t1)
    # every class at the corners: (corner rows, corner columns, K)
    zr = torch.matmul(cx, (cy.to(dev) @ lt).view(-1, w, k))
    width = zr.shape[1]
    corners = (zr[:n, :ntx], zr[:n, ox:ox + ntx],
               zr[oy:oy + n, :ntx], zr[oy:oy + n, ox:ox + ntx])
    offs = ((0, 0), (0, ox), (oy, 0), (oy, ox))
    flat = zr.view(-1)
    # reference classes per tile: best at the centre (one more small
    # matmul), best at each corner
    cy_mid = (cy[:n] + cy[oy:oy + n]).to(dev) / 2
    cx_mid = (cx[:ntx] + cx[ox:ox + ntx]) / 2
    centre = torch.matmul(cx_mid, (cy_mid @ lt).view(n, w, k)).max(dim=2).indices
    best = zr.max(dim=2).indices
    refs = torch.stack([centre] + [best[dy:dy + n, dx:dx + ntx]
                                   for dy, dx in offs], dim=2)  # (n, ntx, 5)
    ty = torch.arange(n, device=dev)[:, None, None]
    tx = torch.arange(ntx, device=dev)[None, :, None]
    ref_v = torch.stack([flat[((ty + dy) * width + tx + dx) * k + refs]
                         for dy, dx in offs], dim=3)  # (n, ntx, 5, 4)
    # dense: the classes strictly below the centre class at all four corners
    below = corners[0] < ref_v[:, :, 0, 0, None]
    for j in (1, 2, 3):
        below &= corners[j] < ref_v[:, :, 0, j, None]
    pty, ptx, pc = (~below).nonzero(as_tuple=True)  # sorted by tile, class
    del below
    ptile = pty * ntx + ptx
    v = torch.stack([flat[((pty + dy) * width + ptx + dx) * k + pc]
                     for dy, dx in offs], dim=1)  # (P, 4)
    # the survivors against each corner's best class: strictly below it at
    # all four corners goes (a class that only ties stays: the evaluation
    # keeps the first of equal classes)
    margin = (ref_v[:, :, 1:].reshape(n * ntx, 16)[ptile].view(-1, 4, 4)
              - v[:, None, :]).amin(dim=2)
    alive = ~(margin > 0).any(dim=1)
    ptile, pc, v = ptile[alive], pc[alive], v[alive]
    # (every tile keeps at least one class: a reference no other dominates)
    labels = centre.view(-1, 1).expand(-1, npx).clone()
    tiles, counts = torch.unique_consecutive(ptile, return_counts=True)
    one = counts == 1
    labels[tiles[one]] = pc[(torch.cumsum(counts, 0) - counts)[one]][:, None]
    multi = (counts > 1).repeat_interleave(counts)
    return labels, (ptile[multi], pc[multi], v[multi])


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
