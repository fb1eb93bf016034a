"""Industrial-inspection images for the MVTec AD tree.

Each category renders a normal sample with natural nuisance variation
(position, rotation, colour, texture, noise) and applies one of its defect
types, returning the image and the defect mask (the pixels the defect
changed, restricted to the object where that is physical)."""
import math

import numpy as np
from PIL import Image, ImageDraw

from .render import lowfreq, to_uint8


def _grid(S):
    ys, xs = np.mgrid[0:S, 0:S].astype(np.float32)
    return xs, ys


def _blob(rng, S, cx, cy, r, n=9):
    """Irregular blob polygon mask."""
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    rad = r * rng.uniform(0.55, 1.0, n)
    poly = [(float(cx + a * math.cos(t)), float(cy + a * math.sin(t)))
            for t, a in zip(ang, rad)]
    img = Image.new('L', (S, S), 0)
    ImageDraw.Draw(img).polygon(poly, fill=1)
    return np.asarray(img, bool)


def _crack(rng, S, p0, length, width, within=None, angle=None):
    """Jagged polyline mask starting at p0."""
    pts = [p0]
    a = rng.uniform(0, 2 * math.pi) if angle is None else angle
    n = 7
    for _ in range(n):
        a += rng.uniform(-0.7, 0.7)
        x, y = pts[-1]
        step = length / n
        pts.append((x + step * math.cos(a), y + step * math.sin(a)))
    img = Image.new('L', (S, S), 0)
    ImageDraw.Draw(img).line([(float(x), float(y)) for x, y in pts], fill=1,
                             width=int(width))
    m = np.asarray(img, bool)
    return m if within is None else (m & within)


# --------------------------------------------------------------------------
# bottle (top view of a bottle mouth)
def _bottle(rng, S):
    xs, ys = _grid(S)
    cx = S / 2 + rng.uniform(-2, 2)
    cy = S / 2 + rng.uniform(-2, 2)
    r_out = S * 0.42 * rng.uniform(0.97, 1.03)
    r_in = r_out * 0.68
    d = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    img = np.empty((S, S, 3), np.float32)
    img[:] = np.array([0.08, 0.08, 0.09], np.float32)
    glass = np.array([0.42, 0.33, 0.16], np.float32) * rng.uniform(0.95, 1.05)
    rim = (d <= r_out) & (d > r_in)
    shade = 0.75 + 0.5 * np.clip(1 - np.abs(d - (r_out + r_in) / 2) /
                                 ((r_out - r_in) / 2), 0, 1)
    img[rim] = (glass * shade[..., None])[rim]
    inner = d <= r_in
    inside = np.array([0.14, 0.11, 0.06], np.float32) * (
        0.6 + 0.6 * (d / r_in))[..., None]
    img[inner] = inside[inner]
    img += 0.02 * rng.standard_normal(img.shape).astype(np.float32)
    return img, {'cx': cx, 'cy': cy, 'r_out': r_out, 'r_in': r_in,
                 'object': d <= r_out}


def _bottle_defect(rng, S, img, info, defect):
    cx, cy, r_out, r_in = info['cx'], info['cy'], info['r_out'], info['r_in']
    if defect == 'broken_large':
        a = rng.uniform(0, 2 * math.pi)
        r = (r_out - r_in) * rng.uniform(0.9, 1.4)
        px = cx + (r_out - 0.2 * (r_out - r_in)) * math.cos(a)
        py = cy + (r_out - 0.2 * (r_out - r_in)) * math.sin(a)
        mask = _blob(rng, S, px, py, r) & info['object']
        img[mask] = np.array([0.08, 0.08, 0.09], np.float32)
        # Bright fracture surface along the break.
        edge = mask & ~np.roll(mask, 1, 0) | mask & ~np.roll(mask, 1, 1)
        img[edge] = np.array([0.8, 0.75, 0.6], np.float32)
    else:  # contamination
        a = rng.uniform(0, 2 * math.pi)
        rr = rng.uniform(0, 0.5) * r_in
        r = S * rng.uniform(0.06, 0.1)
        mask = _blob(rng, S, cx + rr * math.cos(a), cy + rr * math.sin(a), r)
        mask &= info['object']
        col = np.array(rng.uniform(0.5, 0.9, 3), np.float32)
        tex = 0.7 + 0.6 * lowfreq(rng, (S, S), 16)
        img[mask] = (col * tex[..., None])[mask]
    return img, mask


# --------------------------------------------------------------------------
# capsule (two-colour capsule with a printed mark)
def _capsule(rng, S):
    img = np.empty((S, S, 3), np.float32)
    img[:] = np.array([0.86, 0.86, 0.84], np.float32) * rng.uniform(0.97, 1.03)
    ang = rng.uniform(-0.08, 0.08)
    cx = S / 2 + rng.uniform(-2, 2)
    cy = S / 2 + rng.uniform(-2, 2)
    L, W = S * 0.72, S * 0.26
    xs, ys = _grid(S)
    u = (xs - cx) * math.cos(ang) + (ys - cy) * math.sin(ang)
    v = -(xs - cx) * math.sin(ang) + (ys - cy) * math.cos(ang)
    # Rounded rectangle: distance to the central segment.
    seg = np.clip(u, -(L - W) / 2, (L - W) / 2)
    d = np.sqrt((u - seg) ** 2 + v ** 2)
    obj = d <= W / 2
    left = np.array([0.12, 0.12, 0.13], np.float32)
    right = np.array([0.85, 0.45, 0.12], np.float32) * rng.uniform(0.95, 1.05)
    col = np.where((u < 0)[..., None], left, right)
    shade = (0.7 + 0.5 * (1 - np.abs(v) / (W / 2)))[..., None]
    img[obj] = (col * shade)[obj]
    # Print: three dark bars on the orange half.
    for k in range(3):
        uc = L * (0.1 + 0.08 * k)
        bar = (np.abs(u - uc) < S * 0.012) & (np.abs(v) < W * 0.22) & obj
        img[bar] = np.array([0.25, 0.15, 0.08], np.float32)
    img += 0.015 * rng.standard_normal(img.shape).astype(np.float32)
    return img, {'object': obj, 'cx': cx, 'cy': cy, 'L': L, 'W': W,
                 'ang': ang}


def _capsule_defect(rng, S, img, info, defect):
    obj = info['object']
    ys, xs = np.nonzero(obj)
    i = rng.integers(len(xs))
    if defect == 'crack':
        # Start near the middle, run along the capsule axis.
        u0 = rng.uniform(-0.3, 0.3) * info['L']
        p0 = (info['cx'] + u0 * math.cos(info['ang']),
              info['cy'] + u0 * math.sin(info['ang']))
        a = info['ang'] + (0 if rng.random() < 0.5 else math.pi)
        mask = _crack(rng, S, p0, S * 0.3, max(1, S // 64) + 1, within=obj,
                      angle=a)
        img[mask] = img[mask] * 0.3 + np.array([0.45, 0.15, 0.1], np.float32)
    else:  # poke
        r = S * rng.uniform(0.03, 0.05)
        xx, yy = _grid(S)
        d = np.sqrt((xx - xs[i]) ** 2 + (yy - ys[i]) ** 2)
        mask = (d <= r * 1.3) & obj
        img[mask] = img[mask] * 1.2 + 0.1
        hole = (d <= r) & obj
        img[hole] = np.array([0.18, 0.12, 0.08], np.float32)
    return img, mask


# --------------------------------------------------------------------------
# tile (speckled ceramic texture)
def _tile(rng, S):
    base = np.array([0.74, 0.72, 0.68], np.float32) * rng.uniform(0.95, 1.05)
    img = base * (0.85 + 0.3 * lowfreq(rng, (S, S), 6))[..., None]
    n = int(S * S / 60)
    ys = rng.integers(0, S, n)
    xs = rng.integers(0, S, n)
    dark = rng.uniform(0.3, 0.6, n).astype(np.float32)
    img[ys, xs] *= dark[:, None]
    img += 0.02 * rng.standard_normal(img.shape).astype(np.float32)
    return img, {'object': np.ones((S, S), bool)}


def _texture_defect(rng, S, img, defect):
    cx, cy = rng.uniform(0.2, 0.8, 2) * S
    if defect in ('crack', 'scratch'):
        mask = _crack(rng, S, (float(cx), float(cy)), S * 0.4,
                      max(1, S // 50) + (defect == 'crack'))
        if defect == 'crack':
            img[mask] *= 0.25
        else:
            img[mask] = img[mask] * 0.5 + 0.45
    elif defect == 'oil':
        mask = _blob(rng, S, cx, cy, S * rng.uniform(0.08, 0.14))
        img[mask] *= 0.55
    else:  # color
        mask = _blob(rng, S, cx, cy, S * rng.uniform(0.07, 0.12))
        stain = np.array(rng.choice([[0.7, 0.2, 0.2], [0.2, 0.3, 0.7],
                                     [0.2, 0.55, 0.2]]), np.float32)
        img[mask] = img[mask] * 0.4 + stain * 0.6
    return img, mask


# --------------------------------------------------------------------------
# wood (warped grain stripes)
def _wood(rng, S):
    xs, ys = _grid(S)
    warp = lowfreq(rng, (S, S), 4) * S * 0.15
    freq = rng.uniform(0.25, 0.35)
    phase = rng.uniform(0, 2 * math.pi)
    grain = 0.5 + 0.5 * np.sin((xs + warp) * freq + phase)
    light = np.array([0.72, 0.52, 0.32], np.float32) * rng.uniform(0.95, 1.05)
    dark = np.array([0.48, 0.32, 0.18], np.float32)
    img = light * grain[..., None] + dark * (1 - grain[..., None])
    img *= (0.9 + 0.2 * lowfreq(rng, (S, S), (24, 3)))[..., None]
    img += 0.015 * rng.standard_normal(img.shape).astype(np.float32)
    return img, {'object': np.ones((S, S), bool)}


_NORMAL = {'bottle': _bottle, 'capsule': _capsule, 'tile': _tile,
           'wood': _wood}


def render_anomaly(rng, S, category, defect=None):
    """Render one sample of ``category``; ``defect=None`` renders a good one.

    Returns:
        tuple: image (H, W, 3) uint8 and mask (H, W) uint8 in {0, 255}
        (all zeros for good samples).
    """
    img, info = _NORMAL[category](rng, S)
    mask = np.zeros((S, S), bool)
    if defect is not None:
        if category == 'bottle':
            img, mask = _bottle_defect(rng, S, img, info, defect)
        elif category == 'capsule':
            img, mask = _capsule_defect(rng, S, img, info, defect)
        else:
            img, mask = _texture_defect(rng, S, img, defect)
        if mask.sum() < max(12, S * S // 500):
            # Degenerate draw (clipped away): draw again, so every defect
            # sample shows a visible defect.
            return render_anomaly(rng, S, category, defect)
    return to_uint8(img), mask.astype(np.uint8) * 255
