"""NounCaption (the proxy CLIP's noun-only captions, issue #25) and
CaptionDataset's keep_fields."""
import json

import numpy as np
import pytest

from clipdense.datasets import CaptionDataset
from clipdense.datasets.transforms import NounCaption


def sample(**kw):
    base = dict(caption='a red ball on the left and a small cup in fog.',
                kind='scene', objects=['ball', 'cup'],
                classes=['ball', 'cup', 'sky'])
    base.update(kw)
    return base


def test_prob_one_names_only_the_objects():
    np.random.seed(0)
    seen = set()
    for _ in range(20):
        out = NounCaption(prob=1.0)(sample())
        seen.add(out['caption'])
    assert seen == {'a photo of a ball and a cup.',
                    'a photo of a cup and a ball.'}


def test_articles_lists_and_stuff_only_views():
    np.random.seed(1)
    t = NounCaption(prob=1.0)
    one = t(sample(objects=['apple']))['caption']
    assert one == 'a photo of an apple.'
    three = t(sample(objects=['ball', 'cup', 'key']))['caption']
    assert three.startswith('a photo of ') and three.count(', ') == 1
    assert ' and ' in three and all(n in three for n in ('ball', 'cup',
                                                           'key'))
    stuff = t(sample(kind='stuff', objects=[],
                     classes=['sky', 'grass']))['caption']
    assert stuff in ('a photo of sky and grass.', 'a photo of grass and sky.')


def test_other_kinds_and_prob_zero_keep_the_caption():
    cap = 'a photo of a bottle with a scratch.'
    out = NounCaption(prob=1.0)(sample(kind='anomaly', caption=cap,
                                       objects=[], classes=[]))
    assert out['caption'] == cap
    assert NounCaption(prob=0.0)(sample())['caption'] == sample()['caption']
    # kinds=None rewrites every sample that names something
    out = NounCaption(prob=1.0, kinds=None)(sample(kind='anomaly'))
    assert out['caption'] in ('a photo of a ball and a cup.',
                              'a photo of a cup and a ball.')
    # nothing to name: unchanged
    empty = sample(objects=[], classes=[])
    assert NounCaption(prob=1.0)(empty)['caption'] == empty['caption']


def test_prob_is_a_rate():
    np.random.seed(2)
    t = NounCaption(prob=0.3)
    changed = sum(t(sample())['caption'].startswith('a photo of a ')
                  for _ in range(2000))
    assert 0.25 < changed / 2000 < 0.35


@pytest.mark.parametrize('kw, word', [(dict(prob=1.5), 'prob'),
                                      (dict(template='a photo'), 'template')])
def test_bad_arguments(kw, word):
    with pytest.raises(ValueError, match=word):
        NounCaption(**kw)


def test_caption_dataset_keep_fields(tmp_path):
    recs = [dict(image='a.png', caption='a red ball.', kind='scene',
                 objects=['ball']),
            dict(image='b.png', captions=['one', 'two'])]
    (tmp_path / 'c.jsonl').write_text('\n'.join(map(json.dumps, recs)))
    ds = CaptionDataset(ann_file='c.jsonl', data_root=str(tmp_path),
                        keep_fields=('kind', 'objects'), pipeline=[],
                        lazy_init=False)
    assert len(ds) == 3
    first = ds.get_data_info(0)
    assert first['kind'] == 'scene' and first['objects'] == ['ball']
    assert 'kind' not in ds.get_data_info(1)
    assert [ds.get_data_info(i)['caption'] for i in (1, 2)] == ['one', 'two']
    plain = CaptionDataset(ann_file='c.jsonl', data_root=str(tmp_path),
                           pipeline=[])
    assert 'objects' not in plain.get_data_info(0)
