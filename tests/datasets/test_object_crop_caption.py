"""ObjectCropCaption (the proxy CLIP's object crops, issue #25) and the
rich-caption corpus's object boxes."""
import numpy as np
import pytest

from clipdense.datasets.synthetic.rich_captions import visible_box
from clipdense.datasets.transforms import NounCaption, ObjectCropCaption


def sample(img=None, **kw):
    if img is None:
        img = np.zeros((128, 128, 3), np.uint8)
        img[10:40, 20:30] = (255, 0, 0)     # the ball: 10 wide, 30 tall
        img[90:94, 90:94] = (0, 255, 0)     # the key: 4 px, too small
    base = dict(img=img, img_shape=img.shape[:2],
                caption='a red ball on the left and a key.', kind='scene',
                objects=['ball', 'key'],
                boxes=[[20, 10, 30, 40], [90, 90, 94, 94]])
    base.update(kw)
    return base


def test_visible_box():
    m = np.zeros((8, 10), bool)
    assert visible_box(m) is None
    m[2:5, 3:7] = True
    assert visible_box(m) == [3, 2, 7, 5]


def test_crop_is_the_grown_square_around_a_large_enough_object():
    np.random.seed(0)
    t = ObjectCropCaption(prob=1.0, margin=0.5, min_size=8)
    for _ in range(10):
        out = t(sample())
        # only the ball is large enough; side = 30 * (1 + 2 * 0.5) = 60,
        # centred on (25, 25) -> left -5, top -5 -> moved inside to (0, 0)
        assert out['caption'] == 'a photo of a ball.'
        assert out['img'].shape == (60, 60, 3) and out['img_shape'] == (60, 60)
        assert out['objects'] == ['ball'] and out['boxes'] == [[20, 10, 30, 40]]
        ys, xs = np.nonzero(out['img'][..., 0])
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (20, 10, 29, 39)
    # a crop in the middle keeps its centre; a box larger than the image
    # gives the whole image
    assert ObjectCropCaption.square([50, 50, 70, 60], 0.0, 128, 128) == (
        50, 45, 70, 65)
    assert ObjectCropCaption.square([0, 0, 128, 100], 0.2, 128, 128) == (
        0, 0, 128, 128)
    assert ObjectCropCaption.square([120, 120, 128, 128], 0.5, 128, 128) == (
        112, 112, 128, 128)


def test_nothing_changes_when_not_drawn_or_not_eligible():
    np.random.seed(1)
    for t, s in ((ObjectCropCaption(prob=0.0), sample()),
                 (ObjectCropCaption(prob=1.0, min_size=50), sample()),
                 (ObjectCropCaption(prob=1.0), sample(kind='anomaly')),
                 (ObjectCropCaption(prob=1.0), sample(objects=[], boxes=[]))):
        before = s['img'].copy()
        out = t(s)
        assert out['caption'] == s['caption'] == (
            'a red ball on the left and a key.')
        assert out['img'] is s['img'] and (out['img'] == before).all()
    # about prob of the eligible samples are cropped
    t = ObjectCropCaption(prob=0.3, min_size=8)
    n = sum(t(sample())['caption'] == 'a photo of a ball.'
            for _ in range(400))
    assert 80 < n < 160


def test_a_later_noun_caption_names_only_the_cropped_object():
    np.random.seed(2)
    out = NounCaption(prob=1.0)(ObjectCropCaption(prob=1.0, min_size=8)(
        sample()))
    assert out['caption'] == 'a photo of a ball.'


def test_bad_arguments_and_records_without_boxes():
    for kw, word in ((dict(prob=1.5), 'prob'), (dict(margin=-0.1), 'margin'),
                     (dict(min_size=0), 'min_size'),
                     (dict(template='x'), 'template')):
        with pytest.raises(ValueError, match=word):
            ObjectCropCaption(**kw)
    with pytest.raises(ValueError, match='regenerate the rich-caption'):
        ObjectCropCaption(prob=1.0)(sample(boxes=[]))
    assert 'ObjectCropCaption(prob=0.25' in repr(ObjectCropCaption())
