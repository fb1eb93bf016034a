"""Template captions from scene metadata: every attribute in a caption
(class, colour, size, position, background, style) is true of the image."""
import numpy as np

from . import spec
from .scene import CLASS_ID, position_phrase

_SCENE_TEMPLATES = ('a photo of {objs}{bg}{style}.', '{objs}{bg}{style}.',
                    'there is {objs}{bg}{style}.',
                    'a picture of {objs}{bg}{style}.')
_SINGLE_TEMPLATES = ('a photo of {obj}{style}.', '{obj}{style}.',
                     'a picture of {obj}{style}.',
                     'a close-up photo of {obj}{style}.')


def article(phrase):
    return ('an ' if phrase[0] in 'aeiou' else 'a ') + phrase


def _choice(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _join(items):
    if len(items) <= 1:
        return ''.join(items)
    return ', '.join(items[:-1]) + ' and ' + items[-1]


def object_phrase(obj, *, size=True, colour=True, position=None):
    words = ([obj.size] if size else []) + ([obj.colour] if colour else [])
    text = article(' '.join(words + [obj.cls]))
    return text + (' ' + position if position else '')


def background_phrase(label):
    """' on the grass next to a road under the sky' from the stuff areas."""
    frac = {c: float((label == CLASS_ID[c]).mean())
            for c in spec.STUFF_CLASSES}
    ground = [c for c in ('grass', 'road') if frac[c] > 0.05]
    ground.sort(key=lambda c: -frac[c])
    text = ''
    if len(ground) == 2:
        text = (' on the grass next to a road' if ground[0] == 'grass' else
                ' on a road next to grass')
    elif ground:
        text = ' on the grass' if ground[0] == 'grass' else ' on a road'
    if frac['sky'] > 0.05:
        text += ' under the sky'
    return text


def style_suffix(style):
    return spec.STYLE_PHRASES[style][0]


def scene_caption(rng, scene, style):
    """One caption of a multi-object scene."""
    parts = []
    for k, obj in enumerate(scene.objects):
        vis = scene.inst == k + 1
        if not vis.any():
            continue
        pos = position_phrase(vis) if rng.random() < 0.7 else None
        # Colour is left out of half the mentions: with it, colour alone
        # tells images apart in a contrastive batch and a CLIP trained on
        # these captions never needs to learn the object shapes.
        parts.append(object_phrase(obj, size=rng.random() < 0.6,
                                   colour=rng.random() < 0.5, position=pos))
    bg = background_phrase(scene.label)
    if not parts:
        return f'a photo of{bg or " an empty scene"}{style_suffix(style)}.'
    return _choice(rng, _SCENE_TEMPLATES).format(
        objs=_join(parts), bg=bg if rng.random() < 0.7 else '',
        style=style_suffix(style))


def single_caption(rng, obj, style, *, functional_p=0.3):
    """Caption of a single-object image; some captions also say what the
    object's parts are for (relating actions to parts for affordance)."""
    text = _choice(rng, _SINGLE_TEMPLATES).format(
        obj=object_phrase(obj, size=rng.random() < 0.4,
                          colour=rng.random() < 0.5),
        style=style_suffix(style))
    if rng.random() < functional_p:
        func = spec.functional_phrase(obj.cls)
        if func:
            text = text[:-1] + f', {func}.'
    return text


def present_classes(scene):
    ids = np.unique(scene.label)
    return [spec.CLASSES[i] for i in ids if i < len(spec.CLASSES)]
