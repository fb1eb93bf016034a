"""Deterministic writers: PNG with fixed settings, JSON with sorted keys and
no timestamps, and COCO run-length encoding (byte-identical to
``pycocotools.mask.encode``, implemented here so that writing the world does
not need pycocotools)."""
import json
import os

import numpy as np
from PIL import Image

PNG_COMPRESS_LEVEL = 6


def save_png(path, array):
    """Write a uint8 (H, W) or (H, W, 3) array as PNG (no metadata chunks,
    so the bytes depend only on the pixels)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(
        path, format='PNG', compress_level=PNG_COMPRESS_LEVEL, optimize=False)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, sort_keys=True, separators=(',', ':'))
        f.write('\n')


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + '\n')


def read_jsonl(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def _rle_counts(mask):
    """Run lengths of a binary mask in column-major order, starting with a
    run of zeros (COCO convention)."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order='F')
    if flat.size == 0:
        return [0]
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return counts


def _counts_to_string(counts):
    # Port of rleToString (pycocotools/common/maskApi.c): LEB128-like 5-bit
    # groups of the difference to the count two positions before.
    out = []
    for i, x in enumerate(counts):
        x = int(x)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1f
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return ''.join(out)


def _string_to_counts(s):
    # Port of rleFrString.
    counts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1f) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask):
    """Compressed COCO RLE of a binary (H, W) mask:
    ``{'size': [H, W], 'counts': str}``."""
    h, w = mask.shape
    return {'size': [int(h), int(w)],
            'counts': _counts_to_string(_rle_counts(mask))}


def rle_decode(rle):
    """Binary (H, W) uint8 mask from a COCO RLE (compressed or not)."""
    h, w = rle['size']
    counts = rle['counts']
    if isinstance(counts, (str, bytes)):
        counts = _string_to_counts(counts.decode() if isinstance(
            counts, bytes) else counts)
    flat = np.zeros(h * w, np.uint8)
    pos, val = 0, 0
    for c in counts:
        if val:
            flat[pos:pos + c] = 1
        pos += c
        val ^= 1
    return flat.reshape((w, h)).T.copy()


def mask_bbox(mask):
    """COCO [x, y, w, h] of the pixels of a binary mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() - x0 + 1),
            float(ys.max() - y0 + 1)]
