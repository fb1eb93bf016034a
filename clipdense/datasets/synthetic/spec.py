"""The label space and vocabulary of the synthetic world (the single source
of truth: the generator, the dataset classes and the configs read it here).

Everything in this module is plain data plus the object shape definitions,
so that it imports with numpy only.
"""
import math

# Bump when a change to the generator changes any written byte, so that
# cached worlds (see ``generate_world``) are regenerated.
GENERATOR_VERSION = 3

# ---------------------------------------------------------------------------
# Label space. Things first, then stuff (COCO-Stuff order). Semantic label id
# = index in CLASSES; COCO category id = thing label id + 1.
THING_CLASSES = ('ball', 'cup', 'bottle', 'knife', 'hammer', 'key', 'mug',
                 'spoon', 'racket', 'scissors')
STUFF_CLASSES = ('sky', 'grass', 'road')
CLASSES = THING_CLASSES + STUFF_CLASSES
IGNORE_INDEX = 255
# Palette for visualisation only (ids 0..K-1).
PALETTE = [
    [220, 20, 60], [255, 140, 0], [0, 128, 255], [160, 160, 170],
    [128, 64, 0], [255, 215, 0], [148, 0, 211], [0, 206, 209],
    [255, 105, 180], [70, 130, 60], [135, 206, 235], [34, 139, 34],
    [96, 96, 96],
]

# Open-vocabulary split (ZegCLIP-style inductive setting: unseen pixels are
# ignored when training, all classes are evaluated). The unseen things each
# have a seen look-alike (mug~cup, scissors~knife, racket~spoon) so transfer
# is possible but not trivial.
UNSEEN_CLASSES = ('mug', 'scissors', 'road')
SEEN_CLASSES = tuple(c for c in CLASSES if c not in UNSEEN_CLASSES)

# ---------------------------------------------------------------------------
# Styles (domains). The source is flat and clean; the targets share the label
# space and differ in texture/noise, illumination and haze.
SOURCE_STYLE = 'flat'
TARGET_STYLES = ('textured', 'night', 'fog')
STYLES = (SOURCE_STYLE, ) + TARGET_STYLES
STYLE_PHRASES = {
    'flat': ('', 'a clean rendering of '),
    'textured': (' in a detailed photo', 'a textured photo of '),
    'night': (' at night', 'a dark night photo of '),
    'fog': (' in fog', 'a foggy photo of '),
}

# Attribute colours (name -> RGB in [0, 1]).
COLOURS = {
    'red': (0.85, 0.12, 0.12),
    'orange': (0.98, 0.55, 0.08),
    'yellow': (0.97, 0.88, 0.15),
    'green': (0.10, 0.78, 0.20),
    'blue': (0.12, 0.25, 0.90),
    'purple': (0.55, 0.15, 0.75),
    'white': (0.96, 0.96, 0.96),
    'black': (0.08, 0.08, 0.09),
}
COLOUR_NAMES = tuple(COLOURS)

# Size attribute -> object length as a fraction of the image side.
SIZES = {'small': (0.18, 0.26), 'medium': (0.26, 0.36), 'large': (0.36, 0.48)}
SIZE_NAMES = tuple(SIZES)

# Stuff base colours in the flat (source) style.
STUFF_COLOURS = {
    'sky': (0.55, 0.76, 0.95),
    'grass': (0.32, 0.62, 0.24),
    'road': (0.45, 0.45, 0.48),
}

# ---------------------------------------------------------------------------
# Functional parts and actions (affordance). Each action maps to one part of
# each object that affords it (AGD20K-style: GT heat map on that part).
PARTS = ('body', 'rim', 'neck', 'blade', 'handle', 'head', 'bow', 'shaft',
         'bowl')
OBJECT_PARTS = {
    'ball': ('body', ),
    'cup': ('body', 'rim'),
    'bottle': ('body', 'neck'),
    'knife': ('blade', 'handle'),
    'hammer': ('head', 'handle'),
    'key': ('bow', 'shaft'),
    'mug': ('body', 'rim', 'handle'),
    'spoon': ('bowl', 'handle'),
    'racket': ('head', 'handle'),
    'scissors': ('blade', 'handle'),
}
ACTIONS = {
    'hold': {'cup': 'body', 'bottle': 'body', 'knife': 'handle',
             'hammer': 'handle', 'key': 'bow', 'mug': 'handle',
             'spoon': 'handle', 'racket': 'handle', 'scissors': 'handle'},
    'cut': {'knife': 'blade', 'scissors': 'blade'},
    'hit': {'hammer': 'head', 'racket': 'head'},
    'kick': {'ball': 'body'},
    'drink_with': {'cup': 'rim', 'mug': 'rim'},
    'pour': {'bottle': 'neck'},
    'stir': {'spoon': 'bowl'},
}
ACTION_GERUNDS = {'hold': 'holding', 'cut': 'cutting', 'hit': 'hitting',
                  'kick': 'kicking', 'drink_with': 'drinking',
                  'pour': 'pouring', 'stir': 'stirring'}

# ---------------------------------------------------------------------------
# Anomaly (MVTec AD tree): category -> defect types (MVTec names).
ANOMALY_CATEGORIES = {
    'bottle': ('broken_large', 'contamination'),
    'capsule': ('crack', 'poke'),
    'tile': ('crack', 'oil'),
    'wood': ('scratch', 'color'),
}

# ---------------------------------------------------------------------------
# Object shapes. Each object is a list of primitives
# ``(part, colour_role, polygon)`` drawn in order in a local frame whose unit
# is the object length L (x along the main axis, y down, roughly within
# [-0.5, 0.5]); a primitive with part ``None`` cuts a hole (erases what was
# drawn before). Colour roles: 'main' (the attribute colour), 'light'/'dark'
# (shades of it), 'metal', 'dark_metal', 'white'.
# Upright objects (cup, mug, bottle) keep near-vertical orientations; tools
# may take any orientation.


def _rect(x0, x1, y0, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _ellipse(cx, cy, rx, ry, n=28, a0=0.0, a1=2 * math.pi):
    closed = abs((a1 - a0) - 2 * math.pi) < 1e-9
    m = n if closed else n + 1
    return [(cx + rx * math.cos(a0 + (a1 - a0) * i / n),
             cy + ry * math.sin(a0 + (a1 - a0) * i / n)) for i in range(m)]


def _bar(p, q, w):
    """A bar of width ``w`` from point p to point q."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    n = math.hypot(dx, dy) or 1.0
    ox, oy = -dy / n * w / 2, dx / n * w / 2
    return [(p[0] + ox, p[1] + oy), (q[0] + ox, q[1] + oy),
            (q[0] - ox, q[1] - oy), (p[0] - ox, p[1] - oy)]


def _racket():
    cx, rx, ry = 0.2, 0.245, 0.16  # inner ellipse of the frame
    prims = [('head', 'main', _ellipse(cx, 0, 0.3, 0.21)),
             (None, None, _ellipse(cx, 0, rx, ry))]
    # Strings, clipped to the inner ellipse.
    for x in (0.06, 0.13, 0.2, 0.27, 0.34):
        h = ry * math.sqrt(max(0.0, 1 - ((x - cx) / rx) ** 2))
        prims.append(('head', 'white', _rect(x - 0.008, x + 0.008, -h, h)))
    for y in (-0.1, -0.035, 0.035, 0.1):
        w = rx * math.sqrt(max(0.0, 1 - (y / ry) ** 2))
        prims.append(('head', 'white', _rect(cx - w, cx + w, y - 0.008,
                                             y + 0.008)))
    prims.append(('handle', 'dark', _rect(-0.5, -0.08, -0.04, 0.04)))
    prims.append(('handle', 'dark', [(-0.12, -0.03), (-0.04, -0.15),
                                     (-0.0, -0.12), (-0.08, 0.0),
                                     (-0.0, 0.12), (-0.04, 0.15),
                                     (-0.12, 0.03)]))
    return prims


def _scissors():
    prims = []
    for s in (-1, 1):
        prims.append(('handle', 'main', _ellipse(-0.34, 0.15 * s, 0.14,
                                                 0.11)))
        prims.append((None, None, _ellipse(-0.34, 0.15 * s, 0.08, 0.055)))
        prims.append(('handle', 'main', _bar((-0.24, 0.1 * s),
                                             (-0.02, 0.02 * s), 0.07)))
    for s in (-1, 1):
        prims.append(('blade', 'metal', [(-0.04, -0.05 * s), (0.02, -0.06 * s),
                                         (0.5, 0.03 * s), (0.47, 0.055 * s),
                                         (-0.04, 0.0)]))
    prims.append(('blade', 'dark_metal', _ellipse(0.0, 0.0, 0.025, 0.025, 12)))
    return prims


SHAPES = {
    'ball': [('body', 'main', _ellipse(0, 0, 0.5, 0.5, 36)),
             ('body', 'light', _ellipse(-0.16, -0.16, 0.1, 0.08, 16))],
    'cup': [('body', 'main', [(-0.36, -0.42), (0.36, -0.42), (0.26, 0.42),
                              (-0.26, 0.42)]),
            ('rim', 'light', [(-0.36, -0.42), (0.36, -0.42), (0.345, -0.3),
                              (-0.345, -0.3)])],
    'bottle': [('body', 'main', [(-0.19, 0.5), (0.19, 0.5), (0.19, -0.05),
                                 (0.07, -0.2), (-0.07, -0.2), (-0.19, -0.05)]),
               ('neck', 'main', _rect(-0.07, 0.07, -0.45, -0.2)),
               ('neck', 'dark', _rect(-0.085, 0.085, -0.52, -0.43))],
    'knife': [('blade', 'metal', [(-0.1, -0.1), (0.34, -0.1), (0.5, -0.06),
                                  (0.36, 0.03), (-0.1, 0.05)]),
              ('handle', 'main', _rect(-0.5, -0.08, -0.065, 0.065)),
              ('handle', 'dark_metal', _ellipse(-0.2, 0.0, 0.018, 0.018, 8)),
              ('handle', 'dark_metal', _ellipse(-0.38, 0.0, 0.018, 0.018, 8))],
    'hammer': [('handle', 'main', _rect(-0.5, 0.32, -0.045, 0.045)),
               ('head', 'dark_metal', [(0.27, -0.3), (0.47, -0.3),
                                       (0.47, 0.1), (0.42, 0.22),
                                       (0.32, 0.22), (0.27, 0.1)])],
    'key': [('bow', 'main', _ellipse(-0.32, 0.0, 0.18, 0.18, 28)),
            (None, None, _ellipse(-0.32, 0.0, 0.075, 0.075, 20)),
            ('shaft', 'main', _rect(-0.16, 0.5, -0.045, 0.045)),
            ('shaft', 'main', _rect(0.22, 0.28, 0.04, 0.14)),
            ('shaft', 'main', _rect(0.34, 0.4, 0.04, 0.11)),
            ('shaft', 'main', _rect(0.44, 0.5, 0.04, 0.15))],
    'mug': [('handle', 'main', _ellipse(0.26, 0.04, 0.2, 0.22)),
            (None, None, _ellipse(0.26, 0.04, 0.1, 0.12)),
            ('body', 'main', _rect(-0.32, 0.24, -0.4, 0.42)),
            ('rim', 'light', _rect(-0.32, 0.24, -0.4, -0.29))],
    'spoon': [('handle', 'main', [(-0.5, -0.045), (0.1, -0.025),
                                  (0.1, 0.025), (-0.5, 0.045)]),
              ('bowl', 'main', _ellipse(0.29, 0, 0.21, 0.13, 28))],
    'racket': _racket(),
    'scissors': _scissors(),
}
# Objects drawn upright (orientation jitter only); the others rotate freely.
UPRIGHT = ('cup', 'mug', 'bottle')

# Functional sentence per object, used in some captions so that a text
# encoder trained on the captions relates actions to parts.
def functional_phrase(cls):
    """'a knife, with a blade for cutting and a handle for holding'."""
    pairs = []
    for action, objs in ACTIONS.items():
        if cls in objs:
            pairs.append((objs[cls], ACTION_GERUNDS[action]))
    if not pairs:
        return ''
    if len(OBJECT_PARTS[cls]) == 1:  # the part is the whole object
        return 'for ' + ' and '.join(g for _, g in pairs)
    by_part = {}
    for part, gerund in pairs:
        by_part.setdefault(part, []).append(gerund)
    bits = [f'a {part} for {" and ".join(g)}' for part, g in by_part.items()]
    return 'with ' + ' and '.join(bits)


def metainfo():
    """The world's metadata as a JSON-serialisable dict (written as
    ``meta.json`` at the world root)."""
    return {
        'generator_version': GENERATOR_VERSION,
        'classes': list(CLASSES),
        'thing_classes': list(THING_CLASSES),
        'stuff_classes': list(STUFF_CLASSES),
        'palette': [list(p) for p in PALETTE],
        'ignore_index': IGNORE_INDEX,
        'styles': list(STYLES),
        'source_style': SOURCE_STYLE,
        'target_styles': list(TARGET_STYLES),
        'colours': list(COLOUR_NAMES),
        'sizes': list(SIZE_NAMES),
        'parts': list(PARTS),
        'object_parts': {k: list(v) for k, v in OBJECT_PARTS.items()},
        'actions': ACTIONS,
        'anomaly_categories': {k: list(v)
                               for k, v in ANOMALY_CATEGORIES.items()},
        'open_vocab': {'seen': list(SEEN_CLASSES),
                       'unseen': list(UNSEEN_CLASSES)},
    }
