"""Referring-segmentation samples (objects and their functional parts) and
AGD20K-style egocentric test samples (one object, a dense heat map on the
part that affords the action)."""
import numpy as np

from . import spec
from .captions import _choice
from .scene import (PART_ID, compose, draw_primitives,
                    position_phrase, sample_layout, sample_object,
                    sample_scene)


def gaussian_blur_2d(x, sigma):
    """Separable Gaussian blur of a float (H, W) array (reflect padding)."""
    r = max(1, int(3 * sigma + 0.5))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-t * t / (2 * sigma * sigma))
    k /= k.sum()
    out = np.asarray(x, np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode='reflect')
        win = np.lib.stride_tricks.sliding_window_view(p, 2 * r + 1, axis)
        out = win @ k
    return out


def heat_map(mask, sigma):
    """AGD20K-style dense GT: the part mask blurred and scaled to 0..255."""
    h = gaussian_blur_2d(mask.astype(np.float64), sigma)
    if h.max() <= 0:
        return np.zeros(mask.shape, np.uint8)
    return np.round(h / h.max() * 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Referring expressions
def _object_expression(objs, k, vis_masks):
    """A referring expression that singles out object k among ``objs``
    (class, then colour, then position as needed)."""
    obj = objs[k]
    same = [j for j, o in enumerate(objs) if o.cls == obj.cls]
    if len(same) == 1:
        return f'{obj.colour} {obj.cls}', True
    same_colour = [j for j in same if objs[j].colour == obj.colour]
    if len(same_colour) == 1:
        return f'{obj.colour} {obj.cls}', True
    pos = position_phrase(vis_masks[k])
    unique = sum(position_phrase(vis_masks[j]) == pos
                 for j in same_colour) == 1
    return f'{obj.colour} {obj.cls} {pos}', unique


def _sentence(text, sent_id):
    return {'sent_id': sent_id, 'raw': text, 'sent': text,
            'tokens': text.split()}


def refer_sample(rng, size, style='flat'):
    """A multi-object scene with its referring expressions.

    Returns:
        tuple: (scene, items) where items is a list of dicts with
        ``kind`` ('object' or 'part'), ``obj`` (index), ``part`` (name or
        None), ``mask`` (visible, bool) and ``sentences`` (list of str).
        Ambiguous expressions (two identical objects at the same position)
        are skipped.
    """
    scene = sample_scene(rng, size, num_objects=(1, 4), clutter_p=0.0)
    objs = scene.objects
    vis = [scene.inst == k + 1 for k in range(len(objs))]
    items = []
    for k, obj in enumerate(objs):
        if not vis[k].any():
            continue
        expr, unique = _object_expression(objs, k, vis)
        if not unique:
            continue
        pos = position_phrase(vis[k])
        if sum(o.cls == obj.cls for o in objs) == 1:
            alt = f'{obj.cls} {pos}'
        elif not expr.endswith(pos):
            alt = f'{expr} {pos}'
        else:
            alt = f'{obj.size} {expr}'
        items.append({'kind': 'object', 'obj': k, 'part': None,
                      'mask': vis[k], 'sentences': [f'the {expr}', alt]})
        for part in spec.OBJECT_PARTS[obj.cls]:
            if len(spec.OBJECT_PARTS[obj.cls]) == 1:
                break  # the part is the whole object
            pm = vis[k] & (scene.part == PART_ID[part])
            if pm.sum() < 6:
                continue
            items.append({'kind': 'part', 'obj': k, 'part': part, 'mask': pm,
                          'sentences': [f'the {part} of the {expr}',
                                        f'{expr} {part}']})
    return scene, items


# ---------------------------------------------------------------------------
# AGD20K-style egocentric samples
def agd_sample(rng, size, action, cls):
    """One egocentric image of ``cls`` (large, fully visible, drawn last)
    with an optional smaller distractor behind it; returns the scene, the
    index of the target object and the GT heat map (uint8 0..255) of the
    part that affords ``action``."""
    part = spec.ACTIONS[action][cls]
    lay = sample_layout(rng, size, clutter_p=0.0)
    S = size
    for _ in range(100):
        main = sample_object(
            rng, S, cls, size_name='large', scale=1.25,
            center=(rng.uniform(0.35, 0.65) * S, rng.uniform(0.4, 0.65) * S))
        lo, hi = main.bbox()
        if (lo >= 0).all() and (hi <= S - 1).all():
            break
    main_mask = draw_primitives(main.prims, S) > 0
    objects = [main]
    if rng.random() < 0.5:
        others = [c for c in spec.THING_CLASSES if c != cls]
        for _ in range(20):
            d = sample_object(rng, S, _choice(rng, others), size_name='small')
            dm = draw_primitives(d.prims, S) > 0
            if dm.sum() >= 12 and (dm & ~main_mask).sum() >= 0.5 * dm.sum():
                objects = [d, main]
                break
    scene = compose(lay, objects)
    k = len(objects)  # the target is drawn last
    pm = (scene.inst == k) & (scene.part == PART_ID[part])
    return scene, k - 1, heat_map(pm, sigma=max(1.0, 0.03 * S))


__all__ = ['refer_sample', 'agd_sample', 'heat_map', 'gaussian_blur_2d']
