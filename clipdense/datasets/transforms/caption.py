"""Caption transforms for contrastive CLIP training."""
import numpy as np
from mmcv.transforms import BaseTransform

from clipdense.registry import TRANSFORMS


def with_article(noun):
    """``'a cup'``, ``'an apple'``."""
    return ('an ' if noun[:1] in 'aeiou' else 'a ') + noun


def _check_prob_template(name, prob, template, what):
    """``prob`` in [0, 1] and ``template`` with the ``{}`` for ``what``;
    a ValueError naming the transform otherwise."""
    if not 0.0 <= float(prob) <= 1.0:
        raise ValueError(f'{name}: prob must be in [0, 1], got {prob}')
    if '{}' not in template:
        raise ValueError(f'{name}: template must hold "{{}}" for the '
                         f'{what}, got {template!r}')


def _join(items):
    if len(items) == 1:
        return items[0]
    return ', '.join(items[:-1]) + ' and ' + items[-1]


@TRANSFORMS.register_module()
class NounCaption(BaseTransform):
    """With probability ``prob``, replace a sample's caption by one that
    names only what the image shows: ``"a photo of a ball and a cup."``.

    A contrastive batch of rich captions can be told apart by colour, state
    and style words alone, so the loss can fall without the model learning
    object identity (``results/caption_word_sensitivity.md``: the first proxy
    CLIP read colours 86% of the time but object nouns 70%). A noun-only
    caption offers no such shortcut: its only content is the objects. This
    is a training-data choice for the synthetic world's proxy CLIP (issue
    #25), not part of any paper's method.

    Reads the sample's ``objects`` (thing nouns; keep them with
    ``CaptionDataset(keep_fields=...)``); when there are none, its stuff
    ``classes`` (``"a photo of grass, road and sky."``). Samples whose
    ``kind`` is not in ``kinds`` (e.g. the anomaly corpus, whose captions
    are about states), or that name nothing, keep their caption. The object
    order is shuffled so that it says nothing about the layout.

    Args:
        prob (float): chance of replacing a caption, in [0, 1].
        kinds (sequence[str] | None): sample kinds to rewrite; ``None``
            rewrites every sample.
        template (str): ``{}`` is replaced by the joined nouns.
    """

    def __init__(self, prob=0.5, kinds=('scene', 'parts', 'stuff'),
                 template='a photo of {}.'):
        _check_prob_template('NounCaption', prob, template, 'nouns')
        self.prob = float(prob)
        self.kinds = None if kinds is None else tuple(kinds)
        self.template = template

    def nouns(self, results):
        objects = list(results.get('objects') or [])
        if objects:
            return [with_article(o) for o in objects]
        return list(results.get('classes') or [])

    def transform(self, results):
        if self.kinds is not None and results.get('kind') not in self.kinds:
            return results
        if self.prob == 0.0 or np.random.rand() >= self.prob:
            return results
        nouns = self.nouns(results)
        if not nouns:
            return results
        order = np.random.permutation(len(nouns))
        results['caption'] = self.template.format(
            _join([nouns[i] for i in order]))
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'kinds={self.kinds}, template={self.template!r})')


@TRANSFORMS.register_module()
class ObjectCropCaption(BaseTransform):
    """With probability ``prob``, crop the image to one of its objects and
    caption the crop with that object's noun alone: ``"a photo of a cup."``.

    A caption describes a whole image, so a contrastive loss on whole images
    says nothing about *where* a word is; the third proxy round
    (``results/proxy_clip_selection_dense.md``) found that pooling by the
    token average instead of the class token brought the dense tokens no
    closer to the text after 12 epochs. A crop that the object fills
    puts the object's noun on (almost) every token's patch, which is the
    supervision a dense read-out needs and the kind of image a web-scale
    CLIP sees often. This is a training-data choice for the synthetic
    world's proxy CLIP (issue #25), not part of any paper's method.

    Reads the sample's ``objects`` and ``boxes`` (``[x0, y0, x1, y1]``
    pixels, as the rich-caption corpus writes them; keep both with
    ``CaptionDataset(keep_fields=...)``). The crop is the square around the
    chosen box grown by ``margin`` of its longer side on each side, moved
    inside the image where it would cross the border (and shrunk to the
    image if larger). Objects whose box has a side under ``min_size`` pixels
    are not chosen; samples of another ``kind`` or without an object keep
    their image and caption. After a crop, ``objects`` and ``boxes`` name
    only the chosen object (in the crop's coordinates), so a later
    :class:`NounCaption` cannot name objects the crop lost.

    Args:
        prob (float): chance of cropping a sample, in [0, 1].
        margin (float): context kept around the box, a fraction of its
            longer side, >= 0.
        min_size (int): smallest box side (pixels) to crop to, >= 1.
        kinds (sequence[str] | None): sample kinds to crop; ``None`` crops
            every sample with objects.
        template (str): ``{}`` is replaced by the noun with its article.
    """

    def __init__(self, prob=0.25, margin=0.15, min_size=12,
                 kinds=('scene', 'parts'), template='a photo of {}.'):
        _check_prob_template('ObjectCropCaption', prob, template, 'noun')
        if float(margin) < 0:
            raise ValueError(f'ObjectCropCaption: margin must be >= 0, got '
                             f'{margin}')
        if int(min_size) < 1:
            raise ValueError(f'ObjectCropCaption: min_size must be >= 1, '
                             f'got {min_size}')
        self.prob = float(prob)
        self.margin = float(margin)
        self.min_size = int(min_size)
        self.kinds = None if kinds is None else tuple(kinds)
        self.template = template

    @staticmethod
    def square(box, margin, h, w):
        """The crop window ``(x0, y0, x1, y1)`` for ``box`` in an ``h`` x
        ``w`` image (see the class docstring)."""
        x0, y0, x1, y1 = box
        side = int(round(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
        side = max(1, min(side, h, w))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left = int(round(cx - side / 2))
        top = int(round(cy - side / 2))
        left = min(max(left, 0), w - side)
        top = min(max(top, 0), h - side)
        return left, top, left + side, top + side

    def transform(self, results):
        if self.kinds is not None and results.get('kind') not in self.kinds:
            return results
        objects = list(results.get('objects') or [])
        boxes = list(results.get('boxes') or [])
        if len(objects) != len(boxes):
            raise ValueError(
                f'ObjectCropCaption: {len(objects)} objects but {len(boxes)} '
                f'boxes in {results.get("img_path")}; regenerate the '
                'rich-caption corpus (its records carry a box per object '
                'since version 2)')
        ok = [i for i, (x0, y0, x1, y1) in enumerate(boxes)
              if min(x1 - x0, y1 - y0) >= self.min_size]
        if not ok or self.prob == 0.0 or np.random.rand() >= self.prob:
            return results
        i = ok[np.random.randint(len(ok))]
        img = results['img']
        h, w = img.shape[:2]
        x0, y0, x1, y1 = self.square(boxes[i], self.margin, h, w)
        results['img'] = np.ascontiguousarray(img[y0:y1, x0:x1])
        results['img_shape'] = results['img'].shape[:2]
        bx0, by0, bx1, by1 = boxes[i]
        results['objects'] = [objects[i]]
        results['boxes'] = [[max(bx0, x0) - x0, max(by0, y0) - y0,
                             min(bx1, x1) - x0, min(by1, y1) - y0]]
        results['caption'] = self.template.format(with_article(objects[i]))
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'margin={self.margin}, min_size={self.min_size}, '
                f'kinds={self.kinds}, template={self.template!r})')


@TRANSFORMS.register_module()
class LoadCaptionSegMap(BaseTransform):
    """Read a caption sample's semantic label map (``seg_map_path``, set by
    :class:`~clipdense.datasets.CaptionDataset` from a kept ``seg_map``)
    into ``gt_seg_map``, which ``Resize`` then resizes by nearest
    neighbour and ``PackCaptionInputs(with_masks=True)`` turns into one
    mask per class. Samples without a label map (the rich-caption corpus's
    anomaly images before version 4) pass unchanged.
    """

    def transform(self, results):
        path = results.get('seg_map_path')
        if path is None:
            return results
        import cv2
        seg = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if seg is None:
            raise FileNotFoundError(
                f'LoadCaptionSegMap: cannot read the label map {path}; '
                'regenerate the rich-caption corpus (label maps since '
                'version 3)')
        if seg.ndim != 2:
            raise ValueError(f'LoadCaptionSegMap: {path} is not a '
                             f'single-channel label map (shape {seg.shape})')
        results['gt_seg_map'] = seg
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results
