"""Scene sampling and rasterisation (style-independent).

A scene is a stuff layout (sky above a tilted horizon, grass or road below,
an optional road or verge) plus thing objects drawn back to front, so that
later objects occlude earlier ones; the label, instance and part maps store
what is *visible*. A placement is rejected when it would hide more than half
of an earlier object, so every instance keeps a sizeable visible region.
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from PIL import Image, ImageDraw

from . import spec

# Material kinds (the renderer textures each kind differently).
KIND_SKY, KIND_GRASS, KIND_ROAD, KIND_CLUTTER = 0, 1, 2, 3
KIND_PAINT, KIND_METAL, KIND_WHITE = 4, 5, 6
_ROLE_KIND = {'main': KIND_PAINT, 'light': KIND_PAINT, 'dark': KIND_PAINT,
              'metal': KIND_METAL, 'dark_metal': KIND_METAL,
              'white': KIND_WHITE}
STUFF_KIND = {'sky': KIND_SKY, 'grass': KIND_GRASS, 'road': KIND_ROAD}
CLASS_ID = {c: i for i, c in enumerate(spec.CLASSES)}
PART_ID = {p: i + 1 for i, p in enumerate(spec.PARTS)}  # 0 = no part


def role_colour(role, colour_name):
    main = np.array(spec.COLOURS[colour_name], dtype=np.float32)
    if role == 'main':
        return main
    if role == 'light':
        return main + (1 - main) * 0.35
    if role == 'dark':
        return main * 0.6
    if role == 'metal':
        return np.array([0.78, 0.79, 0.82], np.float32)
    if role == 'dark_metal':
        return np.array([0.33, 0.34, 0.38], np.float32)
    if role == 'white':
        return np.array([0.95, 0.95, 0.95], np.float32)
    raise KeyError(role)


@dataclass
class SceneObject:
    """One thing instance; ``prims`` are polygons in image coordinates."""
    cls: str
    colour: str
    size: str
    length: float
    angle: float
    mirror: bool
    center: tuple
    prims: list  # [(part or None, role or None, (N, 2) float array)]

    def bbox(self):
        pts = np.concatenate([p for _, _, p in self.prims])
        return pts.min(0), pts.max(0)


@dataclass
class Layout:
    size: int
    horizon: float  # y of the horizon at the image centre
    slope: float
    ground: str  # 'grass' or 'road'
    patch: Optional[list] = None  # polygon of the other ground class
    patch_class: Optional[str] = None
    clutter: list = field(default_factory=list)  # [(polygon, rgb)]

    def horizon_y(self, x):
        return self.horizon + self.slope * (np.asarray(x) - self.size / 2)


@dataclass
class Scene:
    layout: Layout
    objects: List[SceneObject]
    label: np.ndarray  # (H, W) uint8 semantic ids, 255 = ignore
    inst: np.ndarray  # (H, W) int16, 0 = none, k + 1 = objects[k]
    part: np.ndarray  # (H, W) uint8, PART_ID of the visible part, 0 = none
    material: np.ndarray  # (H, W) int16 index into materials
    materials: list  # [(kind, rgb float32[3], owner instance or 0)]
    full_masks: list = field(default_factory=list)  # unoccluded object masks

    @property
    def size(self):
        return self.layout.size


def transform_shape(cls, length, angle, mirror, center):
    prims = []
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]], np.float64)
    for part, role, poly in spec.SHAPES[cls]:
        pts = np.asarray(poly, np.float64) * length
        if mirror:
            pts[:, 0] = -pts[:, 0]
        pts = pts @ rot.T + np.asarray(center, np.float64)
        prims.append((part, role, pts))
    return prims


def sample_object(rng, size, cls, *, colour=None, size_name=None,
                  center=None, scale=1.0):
    """Sample the attributes and pose of one object of class ``cls``."""
    colour = colour or spec.COLOUR_NAMES[rng.integers(len(spec.COLOUR_NAMES))]
    size_name = size_name or spec.SIZE_NAMES[rng.integers(len(spec.SIZES))]
    lo, hi = spec.SIZES[size_name]
    length = float(rng.uniform(lo, hi)) * size * scale
    if cls in spec.UPRIGHT:
        angle = float(rng.uniform(-0.35, 0.35))
    else:
        angle = float(rng.uniform(-math.pi, math.pi))
    mirror = bool(rng.random() < 0.5)
    if center is None:
        center = (float(rng.uniform(0.1, 0.9) * size),
                  float(rng.uniform(0.1, 0.9) * size))
    return SceneObject(cls, colour, size_name, length, angle, mirror,
                       tuple(center),
                       transform_shape(cls, length, angle, mirror, center))


def draw_primitives(prims, size):
    """Rasterise primitives; returns (H, W) int array, primitive index + 1
    (0 = empty). Holes erase what was drawn before them."""
    canvas = Image.new('I', (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for i, (part, _, pts) in enumerate(prims):
        draw.polygon([tuple(p) for p in pts.tolist()],
                     fill=0 if part is None else i + 1)
    return np.asarray(canvas, dtype=np.int32)


def fill_polygon(poly, size):
    canvas = Image.new('L', (size, size), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in np.asarray(
        poly, np.float64).tolist()], fill=1)
    return np.asarray(canvas, dtype=bool)


def sample_layout(rng, size, *, clutter_p=0.3):
    horizon = float(rng.uniform(0.2, 0.55) * size)
    slope = float(rng.uniform(-0.15, 0.15))
    ground = 'grass' if rng.random() < 0.6 else 'road'
    lay = Layout(size, horizon, slope, ground)
    S = size
    if ground == 'grass' and rng.random() < 0.65:
        # A road receding to the horizon.
        xb = rng.uniform(0.15, 0.85) * S
        wb = rng.uniform(0.3, 0.8) * S
        xt = rng.uniform(0.35, 0.65) * S
        wt = rng.uniform(0.02, 0.1) * S
        yt = float(lay.horizon_y(xt))
        lay.patch = [(xb - wb / 2, S + 1), (xb + wb / 2, S + 1),
                     (xt + wt / 2, yt), (xt - wt / 2, yt)]
        lay.patch_class = 'road'
    elif ground == 'road' and rng.random() < 0.5:
        # A grass verge on one side.
        side = 0 if rng.random() < 0.5 else S
        xa = rng.uniform(0.1, 0.45) * S
        xa = xa if side == 0 else S - xa
        xh = rng.uniform(0.3, 0.5) * S
        xh = xh if side == 0 else S - xh
        lay.patch = [(side, S + 1), (xa, S + 1),
                     (xh, float(lay.horizon_y(xh))),
                     (side, float(lay.horizon_y(side)))]
        lay.patch_class = 'grass'
    if rng.random() < clutter_p:
        # Unlabelled clutter (ignore = 255), like Cityscapes' "void".
        for _ in range(int(rng.integers(1, 3))):
            cx = rng.uniform(0.1, 0.9) * S
            cy = rng.uniform(max(horizon, 0.3 * S), 0.95 * S)
            r = rng.uniform(0.03, 0.07) * S
            n = int(rng.integers(5, 8))
            ang = np.sort(rng.uniform(0, 2 * math.pi, n))
            rad = r * rng.uniform(0.6, 1.0, n)
            poly = np.stack([cx + rad * np.cos(ang),
                             cy + rad * np.sin(ang)], 1)
            rgb = (rng.uniform(0.25, 0.6) *
                   np.array([1.0, rng.uniform(0.75, 1), rng.uniform(0.5, 1)]))
            lay.clutter.append((poly, rgb.astype(np.float32)))
    return lay


def stuff_map(lay):
    S = lay.size
    ys, xs = np.mgrid[0:S, 0:S]
    label = np.full((S, S), CLASS_ID[lay.ground], np.uint8)
    if lay.patch is not None:
        label[fill_polygon(lay.patch, S)] = CLASS_ID[lay.patch_class]
    label[ys < lay.horizon_y(xs)] = CLASS_ID['sky']
    return label


def compose(lay, objects, full_masks=None):
    """Rasterise a layout and objects (back to front) into a :class:`Scene`."""
    S = lay.size
    label = stuff_map(lay)
    material = label.astype(np.int16)  # stuff material id == stuff class
    materials = []
    for c in spec.CLASSES:
        if c in spec.STUFF_CLASSES:
            materials.append((STUFF_KIND[c],
                              np.array(spec.STUFF_COLOURS[c], np.float32), 0))
        else:
            materials.append((KIND_PAINT, np.zeros(3, np.float32), 0))
    for poly, rgb in lay.clutter:
        m = fill_polygon(poly, S)
        label[m] = spec.IGNORE_INDEX
        material[m] = len(materials)
        materials.append((KIND_CLUTTER, rgb, 0))
    inst = np.zeros((S, S), np.int16)
    part = np.zeros((S, S), np.uint8)
    masks = []
    for k, obj in enumerate(objects):
        canvas = draw_primitives(obj.prims, S)
        m = canvas > 0
        masks.append(m)
        label[m] = CLASS_ID[obj.cls]
        inst[m] = k + 1
        base = len(materials)
        lut_part = np.zeros(len(obj.prims) + 1, np.uint8)
        for i, (pname, role, _) in enumerate(obj.prims):
            if pname is None:
                materials.append((KIND_PAINT, np.zeros(3, np.float32), k + 1))
                continue
            lut_part[i + 1] = PART_ID[pname]
            materials.append((_ROLE_KIND[role], role_colour(role, obj.colour),
                              k + 1))
        part[m] = lut_part[canvas[m]]
        material[m] = base + canvas[m] - 1
    return Scene(lay, list(objects), label, inst, part, material, materials,
                 full_masks if full_masks is not None else masks)


def _inside(obj, size, margin=0.04):
    lo, hi = obj.bbox()
    return (lo >= -margin * size).all() and (hi <= (1 + margin) * size).all()


def place_objects(rng, lay, classes, *, min_visible=0.5, tries=25,
                  y_range=None, x_range=(0.1, 0.9), **obj_kwargs):
    """Place objects of the given classes one by one (back to front); each
    new object must lie inside the image and leave every earlier object at
    least ``min_visible`` of its area visible. Objects that cannot be placed
    in ``tries`` attempts are dropped. ``x_range``/``y_range`` bound the
    centre (fractions of the side; by default the centre lies below the
    horizon, on the ground)."""
    S = lay.size
    objects, full, visible = [], [], []
    for cls in classes:
        for _ in range(tries):
            if y_range is None:
                y0 = max(0.15 * S, lay.horizon - 0.1 * S)
                cy = rng.uniform(y0, 0.88 * S)
            else:
                cy = rng.uniform(*y_range) * S
            cx = rng.uniform(*x_range) * S
            obj = sample_object(rng, S, cls, center=(cx, cy), **obj_kwargs)
            if not _inside(obj, S):
                continue
            m = draw_primitives(obj.prims, S) > 0
            area = int(m.sum())
            if area < 12:
                continue
            ok = all(int((v & ~m).sum()) >= max(min_visible * int(f.sum()), 12)
                     for v, f in zip(visible, full))
            if not ok:
                continue
            visible = [v & ~m for v in visible] + [m]
            full.append(m)
            objects.append(obj)
            break
    return objects, full


def sample_scene(rng, size, *, num_objects=(1, 4), classes=None,
                 clutter_p=0.3):
    """Sample a full multi-object scene."""
    classes = spec.THING_CLASSES if classes is None else classes
    lay = sample_layout(rng, size, clutter_p=clutter_p)
    n = int(rng.integers(num_objects[0], num_objects[1] + 1))
    picks = [classes[int(i)] for i in rng.integers(len(classes), size=n)]
    objects, full = place_objects(rng, lay, picks)
    return compose(lay, objects, full)


def position_phrase(mask):
    """'on the left', 'at the top right', 'in the middle', ... from the
    centroid of a mask."""
    S = mask.shape[0]
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean() / S, ys.mean() / S
    h = 'left' if cx < 1 / 3 else ('right' if cx > 2 / 3 else '')
    v = 'top' if cy < 1 / 3 else ('bottom' if cy > 2 / 3 else '')
    if v and h:
        return f'at the {v} {h}'
    if v:
        return f'at the {v}'
    if h:
        return f'on the {h}'
    return 'in the middle'


def single_object_scene(rng, size, cls, *, clutter_p=0.1):
    """A scene with one object of ``cls`` near the centre (medium or large),
    used for classification and single-object caption images."""
    lay = sample_layout(rng, size, clutter_p=clutter_p)
    while True:
        size_name = 'medium' if rng.random() < 0.5 else 'large'
        objects, full = place_objects(rng, lay, [cls], x_range=(0.3, 0.7),
                                      y_range=(0.35, 0.65),
                                      size_name=size_name)
        if objects:
            return compose(lay, objects, full)
