"""Caption transforms for contrastive CLIP training."""
import numpy as np
from mmcv.transforms import BaseTransform

from clipdense.registry import TRANSFORMS


def _with_article(noun):
    return ('an ' if noun[:1] in 'aeiou' else 'a ') + noun


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
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f'NounCaption: prob must be in [0, 1], got '
                             f'{prob}')
        if '{}' not in template:
            raise ValueError('NounCaption: template must hold "{}" where '
                             f'the nouns go, got {template!r}')
        self.prob = float(prob)
        self.kinds = None if kinds is None else tuple(kinds)
        self.template = template

    def nouns(self, results):
        objects = list(results.get('objects') or [])
        if objects:
            return [_with_article(o) for o in objects]
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
