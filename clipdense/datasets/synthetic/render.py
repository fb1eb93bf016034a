"""Rendering a rasterised :class:`~.scene.Scene` in one of the styles.

* ``flat`` (source): flat material colours, no texture, no noise (a
  "rendered game" look, cf. GTA5).
* ``textured``: procedural textures (clouds, grass streaks, asphalt grain),
  dry/green grass hue drift, object shading, colour cast and sensor noise.
* ``night``: the textured scene under a dim blue ambient light with one or
  two warm lamps, a darker sky with stars, strong relative noise.
* ``fog``: the textured scene with depth-dependent haze (distance grows
  towards the horizon, the sky vanishes into the fog) and blur.

All randomness comes from the ``rng`` argument, so a scene renders to the
same bytes for the same generator state.
"""
import numpy as np
from PIL import Image, ImageFilter

from . import spec
from .scene import (KIND_CLUTTER, KIND_GRASS, KIND_METAL, KIND_ROAD,
                    KIND_SKY)


def lowfreq(rng, shape, grid):
    """Smooth noise in [0, 1]: a random ``grid`` lattice resized bilinearly
    to ``shape`` (H, W). ``grid`` may be an int or (gh, gw)."""
    gh, gw = (grid, grid) if np.isscalar(grid) else grid
    small = rng.random((gh, gw)).astype(np.float32)
    img = Image.fromarray(small, mode='F').resize((shape[1], shape[0]),
                                                  Image.BILINEAR)
    return np.asarray(img, np.float32)


def blur(img, radius):
    """Gaussian blur of a float image in [0, 1] (H, W, 3)."""
    u8 = Image.fromarray(to_uint8(img))
    return np.asarray(u8.filter(ImageFilter.GaussianBlur(radius)),
                      np.float32) / 255.0


def to_uint8(img):
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def base_colours(scene):
    table = np.stack([m[1] for m in scene.materials]).astype(np.float32)
    return table[scene.material]


def _kinds(scene):
    return np.array([m[0] for m in scene.materials], np.int16)[scene.material]


def render_flat(scene, rng):
    img = base_colours(scene)
    # Tiny per-image brightness jitter of the stuff only, so the source is
    # clean but not a single colour per class.
    kinds = _kinds(scene)
    for k in (KIND_SKY, KIND_GRASS, KIND_ROAD):
        img[kinds == k] *= np.float32(rng.uniform(0.95, 1.05))
    return img


def _textured(scene, rng, *, noise=0.05):
    S = scene.size
    img = base_colours(scene)
    kinds = _kinds(scene)
    ys = np.arange(S, dtype=np.float32)[:, None] * np.ones((1, S), np.float32)
    hy = scene.layout.horizon_y(np.arange(S, dtype=np.float32))[None, :]
    # Sky: darker at the zenith, lighter at the horizon, clouds.
    m = kinds == KIND_SKY
    if m.any():
        grad = 0.8 + 0.35 * np.clip(ys / np.maximum(hy, 1.0), 0, 1)
        cloud = np.clip((lowfreq(rng, (S, S), (4, 7)) - 0.45) * 3.0, 0, 1)
        sky = img * grad[..., None]
        sky = sky * (1 - 0.75 * cloud[..., None]) + 0.93 * 0.75 * cloud[
            ..., None]
        img[m] = sky[m]
    # Grass: hue drift towards dry grass, patches, vertical blade streaks.
    m = kinds == KIND_GRASS
    if m.any():
        dry = np.array([0.62, 0.58, 0.25], np.float32)
        t = np.float32(rng.uniform(0.0, 0.5))
        patch = 0.7 + 0.6 * lowfreq(rng, (S, S), 6)
        streak = 0.75 + 0.5 * lowfreq(rng, (S, S), (max(S // 16, 2), S // 2))
        g = (img * (1 - t) + dry * t) * (patch * streak)[..., None]
        img[m] = g[m]
    # Road: asphalt grain and stains.
    m = kinds == KIND_ROAD
    if m.any():
        grain = 1 + 0.18 * rng.standard_normal((S, S)).astype(np.float32)
        stain = 0.75 + 0.5 * lowfreq(rng, (S, S), 5)
        tint = np.array(rng.uniform(0.9, 1.1, 3), np.float32)
        r = img * (grain * stain)[..., None] * tint
        img[m] = r[m]
    m = kinds == KIND_CLUTTER
    if m.any():
        c = img * (0.7 + 0.6 * lowfreq(rng, (S, S), 12))[..., None]
        img[m] = c[m]
    # Objects: directional shading, metal highlights.
    xs = np.arange(S, dtype=np.float32)[None, :] * np.ones((S, 1), np.float32)
    owners = np.array([m[2] for m in scene.materials], np.int16)[
        scene.material]
    for k in range(1, len(scene.objects) + 1):
        m = owners == k
        if not m.any():
            continue
        a = rng.uniform(0, 2 * np.pi)
        proj = np.cos(a) * xs + np.sin(a) * ys
        pm = proj[m]
        span = max(float(pm.max() - pm.min()), 1.0)
        shade = 0.7 + 0.5 * (pm - pm.min()) / span
        col = img[m] * shade[:, None]
        metal = kinds[m] == KIND_METAL
        if metal.any():
            hi = np.abs(((pm - pm.min()) / span) - rng.uniform(0.3, 0.7))
            col[metal] += (0.35 * np.clip(1 - hi[metal] * 6, 0, 1))[:, None]
        img[m] = col
    # Global colour cast, contrast and sensor noise.
    cast = np.array(rng.uniform(0.88, 1.12, 3), np.float32)
    img = img * cast
    img = (img - 0.5) * np.float32(rng.uniform(0.85, 1.15)) + 0.5
    img += noise * rng.standard_normal(img.shape).astype(np.float32)
    return img


def render_textured(scene, rng):
    return _textured(scene, rng, noise=0.06)


def render_night(scene, rng):
    S = scene.size
    img = _textured(scene, rng, noise=0.0)
    kinds = _kinds(scene)
    # The sky is darker than the lit ground (no sun), with stars.
    sky = kinds == KIND_SKY
    night_sky = img * np.float32(rng.uniform(0.35, 0.6))
    stars = rng.random((S, S)) < 0.01
    night_sky[stars] = 2.5  # after the ambient scale below: about 0.8
    img[sky] = night_sky[sky]
    ys, xs = np.mgrid[0:S, 0:S].astype(np.float32)
    ambient = np.float32(rng.uniform(0.22, 0.4))
    light = np.ones((S, S, 3), np.float32) * ambient * np.array(
        [0.7, 0.8, 1.1], np.float32)
    for _ in range(int(rng.integers(1, 3))):
        lx, ly = rng.uniform(0, S), rng.uniform(0.3 * S, S)
        r = rng.uniform(0.25, 0.5) * S
        s = rng.uniform(0.4, 0.8)
        g = s * np.exp(-((xs - lx) ** 2 + (ys - ly) ** 2) / (2 * r * r))
        light += g[..., None] * np.array([1.0, 0.8, 0.5], np.float32)
    img = img * light
    img += 0.035 * rng.standard_normal(img.shape).astype(np.float32)
    return img


def render_fog(scene, rng):
    S = scene.size
    img = _textured(scene, rng, noise=0.0)
    lay = scene.layout
    ys, xs = np.mgrid[0:S, 0:S].astype(np.float32)
    # Distance proxy: inverse height below the horizon (flat ground plane).
    below = (ys - lay.horizon_y(xs)) / S
    z = 1.0 / np.maximum(below, 0.02)
    for k in range(1, len(scene.objects) + 1):
        m = scene.inst == k
        if m.any():
            bottom = ys[m].max()
            xb = xs[m][ys[m] == bottom].mean()
            b = (bottom - float(lay.horizon_y(xb))) / S
            z[m] = 1.0 / max(b, 0.05)
    beta = np.float32(rng.uniform(0.06, 0.14))
    t = np.exp(-beta * z)[..., None]
    airlight = np.array([0.8, 0.81, 0.83], np.float32) * np.float32(
        rng.uniform(0.9, 1.05))
    img = img * t + airlight * (1 - t)
    img = blur(img, rng.uniform(0.8, 1.5))
    img += 0.02 * rng.standard_normal(img.shape).astype(np.float32)
    return img


RENDERERS = {'flat': render_flat, 'textured': render_textured,
             'night': render_night, 'fog': render_fog}
assert set(RENDERERS) == set(spec.STYLES)


def render(scene, style, rng):
    """Render ``scene`` in ``style``; returns an (H, W, 3) uint8 array."""
    return to_uint8(RENDERERS[style](scene, rng))


__all__ = ['render', 'RENDERERS', 'lowfreq', 'blur', 'to_uint8']
