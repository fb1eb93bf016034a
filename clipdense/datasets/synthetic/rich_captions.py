"""Rich captions: a separate image-caption corpus for the proxy CLIP.

The quickstart's tiny CLIP keeps its own corpus (``captions/clip_*.jsonl``
of :func:`generate_world`, made by :mod:`.captions`) so that its results stay
reproducible. This module writes a second corpus, in its own folder, whose
captions cover the words the methods prompt with, and only as far as the
world renders them (every word is true of its image):

* **scenes** (2-4 objects): every visible object with its colour (half of
  the mentions, as in the quickstart captions, so that colour alone does
  not tell the images apart), size and place (3x3 grid of its visible
  pixels), the stuff (sky, grass, road) and up to two pairwise relations
  computed from the masks: left of / right of / above / below (centroids)
  and in front of / behind (the later-drawn object hides part of the
  earlier one's full mask);
* **parts** (one object): where each visible functional part is and what it
  affords (``spec.ACTIONS``: handle -> hold, blade -> cut, head -> hit, rim
  -> drink with, neck -> pour, bowl -> stir, body -> kick/hold), phrased
  like the affordance prompts ("the part to cut with is the blade");
* **anomaly** (the MVTec-style categories bottle, capsule, tile, wood): the
  state of the object, intact ("flawless", "unblemished", "without
  defect", ... the normal states the anomaly prompts use) or its rendered
  defect type with specific words (broken, contaminated, cracked, poked,
  oily/oil-stained, scratched, colour-stained) and generic ones ("damaged",
  "with defect", ...), and where the defect is;
* **stuff only** (no object): which stuff is in view.

What the world does not render, the captions do not say: the everyday
objects (ball, cup, knife, ...) have no states (no scratched knife), the
anomaly categories have no functional parts (only the bottle mouth's
"broken rim" is named), nothing is held or used (no agent, so no
interaction words beyond what a part is for), and there are no support
relations (nothing stands *on* another object).

Images are drawn from their own seed stream, so they never coincide with the
world's held-out test images (classification, MVTec test, AGD). Entry point:
:func:`generate_rich_captions` (cached like :func:`generate_world`).
"""
import json
import os.path as osp

import numpy as np

from . import spec
from .anomaly import render_anomaly
from .captions import _choice, _join, article, background_phrase
from .render import render
from .scene import (PART_ID, sample_layout, compose, position_phrase,
                    sample_scene, single_object_scene)
from .writers import mask_bbox, save_png, write_jsonl

# bump when a change alters any written byte
# 2: records carry object boxes; 3: scene, parts and stuff images have a
# semantic label map (labels/<split>/..., the record's "seg_map"); 4: anomaly
# images too, of their intact / defect regions, named by "seg_classes"
RICH_CAPTIONS_VERSION = 4
MARKER = '.clipdense_rich_captions.json'
SPLITS = ('train', 'val')
_RICH = 11  # seed stream (the world uses 1..6)
KINDS = ('scene', 'parts', 'anomaly', 'stuff')
DEFAULT_MIX = (0.4, 0.3, 0.25, 0.05)

# Normal / generic anomalous state words (the ones zero-shot anomaly prompts
# use, clipdense/models/utils/anomaly_prompts.py, plus 'intact'): true of
# every good / defective sample.
NORMAL_ADJ = ('intact', 'normal', 'flawless', 'perfect', 'unblemished', 'good')
NORMAL_SUFFIX = ('without flaw', 'without defect', 'without damage')
ANOMALOUS_ADJ = ('damaged', 'abnormal', 'imperfect', 'blemished',
                 'defective')
ANOMALOUS_SUFFIX = ('with flaw', 'with defect', 'with damage')
# Words for each rendered defect type: (adjectives, 'with ...' phrases).
DEFECT_WORDS = {
    'broken_large': (('broken', ), ('with a large break', 'with a broken rim')),
    'contamination': (('contaminated', ), ('with contamination', )),
    'crack': (('cracked', ), ('with a crack', )),
    'poke': (('poked', 'punctured'), ('with a poke hole', 'with a hole')),
    'oil': (('oily', 'stained', 'oil-stained'), ('with an oil stain',
                                                 'with a stain')),
    'scratch': (('scratched', ), ('with a scratch', )),
    'color': (('stained', 'discoloured'), ('with a colour stain',
                                          'with a color stain',
                                          'with a stain')),
}
# the word each defect is named by where the caption says where it is
DEFECT_NOUN = {'broken_large': 'break', 'contamination': 'contamination',
               'crack': 'crack', 'poke': 'hole', 'oil': 'oil stain',
               'scratch': 'scratch', 'color': 'stain'}
ANOMALY_NOUNS = {'object': ('photo', 'industrial photo', 'close-up photo',
                            'manufacturing image'),
                 'texture': ('photo', 'industrial photo', 'textural photo',
                             'surface picture')}
TEXTURE_CATEGORIES = ('tile', 'wood')
ACTION_WORDS = {'drink_with': 'drink with'}

# Every state/part/action word a caption may contain (the tests check that
# captions use them only for images that show them).
STATE_WORDS = tuple(sorted({w for a, s in DEFECT_WORDS.values()
                            for w in a + s} | set(NORMAL_ADJ) |
                           set(NORMAL_SUFFIX) | set(ANOMALOUS_ADJ) |
                           set(ANOMALOUS_SUFFIX)))


def _rng(*key):
    return np.random.default_rng([int(k) for k in key])


def action_text(action):
    return ACTION_WORDS.get(action, action)


def _ref(objs, k):
    """'the red knife' if that picks out object k (by class, else class and
    colour), else None."""
    o = objs[k]
    same = [j for j, x in enumerate(objs) if x.cls == o.cls]
    if len(same) == 1:
        return f'the {o.cls}'
    if sum(objs[j].colour == o.colour for j in same) == 1:
        return f'the {o.colour} {o.cls}'
    return None


def relations(scene, min_shift=0.15, min_hidden=0.03):
    """True pairwise relations of the visible objects of ``scene``.

    Returns a list of ``(a, relation, b)`` with object indices and relation
    in ``'to the left of'``, ``'to the right of'``, ``'above'``, ``'below'``
    (visible-mask centroids, when the shift along that axis exceeds
    ``min_shift`` of the side and the other axis' shift; one per unordered
    pair, the later-drawn object as subject), ``'in front of'``
    (a is drawn after b and hides more than ``min_hidden`` of b's full
    mask)."""
    S = scene.size
    objs = scene.objects
    vis = [scene.inst == k + 1 for k in range(len(objs))]
    cent = [np.argwhere(v).mean(0) / S if v.any() else None for v in vis]
    out = []
    for a in range(len(objs)):
        for b in range(len(objs)):
            if a == b or cent[a] is None or cent[b] is None:
                continue
            dy, dx = cent[a] - cent[b]
            if a < b:
                pass  # one spatial relation per unordered pair
            elif abs(dx) > min_shift and abs(dx) > abs(dy):
                out.append((a, 'to the left of' if dx < 0 else
                            'to the right of', b))
            elif abs(dy) > min_shift and abs(dy) > abs(dx):
                out.append((a, 'above' if dy < 0 else 'below', b))
            if a > b and scene.full_masks:
                full_b = scene.full_masks[b]
                hidden = (full_b & vis[a]).sum() / max(1, full_b.sum())
                if hidden > min_hidden:
                    out.append((a, 'in front of', b))
    return out


def rich_scene_caption(rng, scene, style, max_relations=2):
    """Objects with colour, size and place, the stuff, and true relations."""
    objs = scene.objects
    mentions = []
    for k, obj in enumerate(objs):
        vis = scene.inst == k + 1
        if not vis.any():
            continue
        words = ([obj.size] if rng.random() < 0.5 else []) + (
            [obj.colour] if rng.random() < 0.5 else [])
        text = article(' '.join(words + [obj.cls]))
        if rng.random() < 0.8:
            text += ' ' + position_phrase(vis)
        mentions.append(text)
    bg = background_phrase(scene.label)
    style_txt = spec.STYLE_PHRASES[style][0]
    if not mentions:
        return stuff_caption(rng, scene, style)
    head = _choice(rng, ('a photo of {}', '{}', 'there is {}',
                         'a picture of {}')).format(_join(mentions))
    text = f'{head}{bg}{style_txt}.'
    rels = [(a, r, b) for a, r, b in relations(scene)
            if _ref(objs, a) and _ref(objs, b)]
    if rels:
        order = rng.permutation(len(rels))[:max_relations]
        for i in sorted(order.tolist()):
            a, r, b = rels[i]
            text += f' {_ref(objs, a)} is {r} {_ref(objs, b)}.'
    return text


def stuff_caption(rng, scene, style):
    """Which stuff is in view (no object)."""
    bg = background_phrase(scene.label).strip()
    style_txt = spec.STYLE_PHRASES[style][0]
    if not bg:
        bg = 'the ground'
    return _choice(rng, ('a photo of an empty scene {}{}.',
                         'nothing but the ground {}{}.',
                         'an empty view {}{}.')).format(bg, style_txt)


def part_side(part_mask, obj_mask, min_shift=0.15):
    """Where a part lies within its object ('on the left', 'at the top',
    ...): the part's centroid relative to the object's, along the dominant
    axis, when it is off by more than ``min_shift`` of the object's extent
    along that axis; else None."""
    pc = np.argwhere(part_mask).mean(0)
    pts = np.argwhere(obj_mask)
    oc = pts.mean(0)
    ext = np.maximum(pts.max(0) - pts.min(0) + 1, 1)
    dy, dx = (pc - oc) / ext
    if abs(dx) >= abs(dy) and abs(dx) > min_shift:
        return 'on the left' if dx < 0 else 'on the right'
    if abs(dy) > abs(dx) and abs(dy) > min_shift:
        return 'at the top' if dy < 0 else 'at the bottom'
    return None


def part_caption(rng, scene, style):
    """One object: where its parts are and what each affords."""
    obj = scene.objects[0]
    vis = scene.inst == 1
    words = ([obj.size] if rng.random() < 0.5 else []) + (
        [obj.colour] if rng.random() < 0.6 else [])
    name = ' '.join(words + [obj.cls])
    style_txt = spec.STYLE_PHRASES[style][0]
    text = _choice(rng, ('a photo of {}', 'a close-up photo of {}', '{}',
                         'a picture of {}')).format(article(name))
    if rng.random() < 0.5:
        text += ' ' + position_phrase(vis)
    text += f'{style_txt}.'
    parts = spec.OBJECT_PARTS[obj.cls]
    sentences = []
    if len(parts) > 1:
        for part in parts:
            pm = vis & (scene.part == PART_ID[part])
            side = part_side(pm, vis) if pm.sum() >= 6 else None
            if side and rng.random() < 0.7:
                sentences.append(f'its {part} is {side}.')
    for action, per_obj in spec.ACTIONS.items():
        part = per_obj.get(obj.cls)
        if part is None:
            continue
        pm = vis & (scene.part == PART_ID[part])
        if pm.sum() < 6:
            continue  # the part that affords it is not visible
        act = action_text(action)
        if len(parts) == 1:  # the part is the whole object
            form = _choice(rng, ('it is for {g}.', 'you can {a} it.'))
        else:
            form = _choice(rng, ('the {p} is for {g}.',
                                 'the part to {a} is the {p}.',
                                 '{a} it by the {p}.' if action == 'hold'
                                 else 'the {p} is the part to {a}.'))
        sentences.append(form.format(p=part, a=act,
                                     g=spec.ACTION_GERUNDS[action]))
    order = rng.permutation(len(sentences)).tolist()
    return ' '.join([text] + [sentences[i] for i in order])


def anomaly_caption(rng, category, defect, mask):
    """State caption of an MVTec-style sample (``defect=None``: good)."""
    domain = 'texture' if category in TEXTURE_CATEGORIES else 'object'
    noun = _choice(rng, ANOMALY_NOUNS[domain])
    if defect is None:
        if rng.random() < 0.6:
            phrase = f'{_choice(rng, NORMAL_ADJ)} {category}'
        else:
            phrase = f'{category} {_choice(rng, NORMAL_SUFFIX)}'
        return f'{article(noun)} of a {phrase}.'
    adjs, withs = DEFECT_WORDS[defect]
    r = rng.random()
    if r < 0.45:
        phrase = f'{_choice(rng, adjs)} {category}'
    elif r < 0.8:
        phrase = f'{category} {_choice(rng, withs)}'
    else:  # generic state word only
        phrase = (f'{_choice(rng, ANOMALOUS_ADJ)} {category}'
                  if rng.random() < 0.5 else
                  f'{category} {_choice(rng, ANOMALOUS_SUFFIX)}')
    text = f'{article(noun)} of a {phrase}.'
    if mask is not None and mask.any() and rng.random() < 0.6:
        text += f' the {DEFECT_NOUN[defect]} is {position_phrase(mask > 0)}.'
    return text


def anomaly_region_names(category):
    """The names of an anomaly image's label-map values (version 4): 0 is
    the intact rest of the image (background included, as the pixel
    metrics count it), 1 the defect. One fixed phrase per side (an intact
    state word of the captions and a generic anomalous one), so that the
    region loss never has two names for one side of one category."""
    return (f'intact {category}', f'damaged {category}')


def visible_box(mask):
    """``[x0, y0, x1, y1]`` (pixels, ``x1``/``y1`` exclusive) around the
    True pixels of ``mask``; None when there are none."""
    x, y, w, h = (int(v) for v in mask_bbox(mask))
    return [x, y, x + w, y + h] if w else None


def _rich_job(job):
    root, seed, size, split, i, styles, mix = job
    rng = _rng(seed, _RICH, SPLITS.index(split), i)
    kind = KINDS[int(rng.choice(len(KINDS), p=np.asarray(mix)))]
    style = styles[int(rng.integers(len(styles)))]
    rec = {'kind': kind}
    if kind == 'anomaly':
        cats = list(spec.ANOMALY_CATEGORIES)
        cat = cats[int(rng.integers(len(cats)))]
        defects = spec.ANOMALY_CATEGORIES[cat]
        defect = (None if rng.random() < 0.5 else
                  defects[int(rng.integers(len(defects)))])
        img, mask = render_anomaly(rng, size, cat, defect)
        caption = anomaly_caption(rng, cat, defect, mask)
        rec.update(category=cat, defect=defect, style=None, classes=[])
        # version 4: a label map of the state regions, named per record
        # (label 0: the intact rest of the image, 1: the defect's pixels)
        seg_rel = f'labels/{split}/rich_{split}_{i:05d}.png'
        save_png(osp.join(root, seg_rel), (mask > 0).astype(np.uint8))
        rec.update(seg_map=seg_rel,
                   seg_classes=list(anomaly_region_names(cat)))
    else:
        if kind == 'scene':
            scene = sample_scene(rng, size, num_objects=(2, 4))
            img = render(scene, style, rng)
            caption = rich_scene_caption(rng, scene, style)
        elif kind == 'parts':
            cls = spec.THING_CLASSES[int(rng.integers(
                len(spec.THING_CLASSES)))]
            scene = single_object_scene(rng, size, cls)
            img = render(scene, style, rng)
            caption = part_caption(rng, scene, style)
        else:
            scene = compose(sample_layout(rng, size), [])
            img = render(scene, style, rng)
            caption = stuff_caption(rng, scene, style)
        ids = np.unique(scene.label)
        objects, boxes = [], []
        for k, o in enumerate(scene.objects):
            box = visible_box(scene.inst == k + 1)
            if box is not None:
                objects.append(o.cls)
                boxes.append(box)
        rec.update(style=style, classes=[spec.CLASSES[c] for c in ids
                                         if c < len(spec.CLASSES)],
                   objects=objects, boxes=boxes)
        seg_rel = f'labels/{split}/rich_{split}_{i:05d}.png'
        save_png(osp.join(root, seg_rel), scene.label)
        rec['seg_map'] = seg_rel
    rel = f'images/{split}/rich_{split}_{i:05d}.png'
    save_png(osp.join(root, rel), img)
    rec.update(image=rel, caption=caption)
    return rec


def rich_caption_paths(out_dir):
    r = osp.abspath(out_dir)
    return {'root': r, **{f'clip_{sp}': osp.join(r, f'clip_{sp}.jsonl')
                          for sp in SPLITS}}


def generate_rich_captions(out_dir, *, seed=0, size=128, num_train=10000,
                           num_val=500, styles=spec.STYLES, mix=DEFAULT_MIX,
                           workers=1, progress=True, force=False):
    """Write (or reuse) the rich-caption corpus under ``out_dir``.

    ``out_dir/clip_{train,val}.jsonl`` hold ``{"image", "caption", "kind",
    "style", "classes", ...}`` (scene, parts and stuff records also
    ``"objects"``, the visible things, and ``"boxes"``, each one's visible
    ``[x0, y0, x1, y1]`` in pixels, and ``"seg_map"``, the image's semantic
    label map: a uint8 PNG of ``spec.CLASSES`` indices, 255 = ignore, as
    the world's ``ann_dir``; anomaly records have ``"seg_map"`` too, 0 for
    the intact rest of the image and 1 for the defect, with those two
    values' names in ``"seg_classes"``) with paths relative to ``out_dir``
    (``images/<split>/rich_<split>_NNNNN.png``, ``labels/<split>/...``). The same arguments give the
    same bytes; a second call returns at once (marker file). ``mix`` is the
    fraction of scene / parts / anomaly / stuff-only images.
    """
    from .world import build_marked
    styles = tuple(styles)
    if not styles or set(styles) - set(spec.STYLES):
        raise ValueError(f'styles must be a non-empty subset of {spec.STYLES}')
    mix = tuple(float(m) for m in mix)
    if len(mix) != len(KINDS) or min(mix) < 0 or abs(sum(mix) - 1) > 1e-6:
        raise ValueError(f'mix must be {len(KINDS)} non-negative fractions '
                         f'of {KINDS} summing to 1, got {mix}')
    args = dict(seed=seed, size=size, num_train=num_train, num_val=num_val,
                styles=list(styles), mix=list(mix))
    marker = {'version': RICH_CAPTIONS_VERSION,
              'generator_version': spec.GENERATOR_VERSION, 'args': args}
    out_dir = osp.abspath(out_dir)
    paths = rich_caption_paths(out_dir)

    def fill(tmp, runner):
        for split in SPLITS:
            n = num_train if split == 'train' else num_val
            jobs = [(tmp, seed, size, split, i, styles, mix)
                    for i in range(n)]
            recs = runner.map(_rich_job, jobs, f'rich captions/{split}')
            write_jsonl(osp.join(tmp, f'clip_{split}.jsonl'), recs)

    build_marked(out_dir, marker, fill, label='rich captions',
                 what='a rich-caption corpus', workers=workers,
                 progress=progress, force=force, marker_name=MARKER)
    return paths


def read_marker(out_dir):
    with open(osp.join(out_dir, MARKER)) as f:
        return json.load(f)


__all__ = ['generate_rich_captions', 'rich_caption_paths',
           'rich_scene_caption', 'part_caption', 'anomaly_caption',
           'stuff_caption', 'relations', 'STATE_WORDS', 'DEFECT_WORDS']
