"""OVSeg's offline noun extraction and (mask, noun) mining."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from clipdense.testing import register_tiny_models

register_tiny_models()


def _eval_class_names():
    """Every evaluation class name clipdense knows for OVSeg (the authors'
    lists and mmseg's), lower-cased, with each comma-separated part."""
    from mmseg.datasets import (ADE20KDataset, COCOStuffDataset, PascalContextDataset59,
                                PascalVOCDataset)

    from clipdense.datasets.ovseg_names import OVSEG_DATASETS, ovseg_class_names
    names = [n for d in OVSEG_DATASETS for n in ovseg_class_names(d)]
    for ds in (ADE20KDataset, COCOStuffDataset, PascalContextDataset59, PascalVOCDataset):
        names += list(ds.METAINFO['classes'])
    out = set()
    for n in names:
        out.add(n.strip().lower())
        out.update(p.strip().lower() for p in n.split(','))
        out.update(w.strip(',').lower() for w in n.replace('-', ' ').split())
    return out - {''}


def test_open_nouns_from_handwritten_captions():
    from clipdense.datasets.nouns import OpenNounExtractor
    ex = OpenNounExtractor()
    caps = ('A photo of two knives, a red Mug and a traffic light on the grass '
            'next to a road under the sky at night.')
    assert ex(caps) == ['knife', 'mug', 'traffic light', 'grass', 'road', 'sky', 'night']
    # plurals, repeats, image-level words, unknown words, verbs, adjectives
    assert ex('cups and cups and bottles in a picture of blorps') == ['cup', 'bottle']
    assert ex('A man riding a wave on top of a surfboard.') == ['man', 'wave', 'surfboard']
    assert ex('A man rides a horse past traffic lights.') == ['man', 'horse', 'traffic light']
    assert ex('a giraffe eating leaves from a tree') == ['giraffe', 'leaf', 'tree']
    assert ex('an orange on the table') == ['orange', 'table']
    assert ex('a red ball') == ['ball']
    assert ex('A building with a clock') == ['building', 'clock']
    assert ex('') == []


def test_open_noun_lexicon_is_not_an_evaluation_class_list():
    """The lexicon is lemminflect's general English table, not a list built
    from class names: over 15K of its nouns name no evaluation class (of
    about 2.3K class names and name parts of the OVSeg/mmseg lists), it
    lacks multi-word class names, and mining finds nouns of no class list."""
    from clipdense.datasets.nouns import OpenNounExtractor, lemminflect_table_path
    assert 'site-packages' in lemminflect_table_path() or 'lemminflect' in \
        lemminflect_table_path()
    import clipdense
    import os.path as osp
    # no noun list ships with clipdense any more (the old one held the class names)
    assert not osp.exists(osp.join(osp.dirname(clipdense.__file__), 'datasets',
                                   'resources', 'nouns_en.txt'))
    ex = OpenNounExtractor()
    lex = ex.lexicon
    classes = _eval_class_names()
    # general English: most of it names no evaluation class
    assert len(lex - classes) > 15000
    assert len(lex & classes) < 0.1 * len(lex)
    assert 'traffic light' not in lex and 'chest of drawers' not in lex
    # nouns that name no evaluation class are mined
    found = ex('A kangaroo next to a saxophone, a walrus and a hedgehog.')
    assert found == ['kangaroo', 'saxophone', 'walrus', 'hedgehog']
    assert not set(found) & classes
    # and class names are mined as ordinary nouns (no special treatment)
    assert ex('a dog on the grass') == ['dog', 'grass']


def test_closed_noun_list_extractor():
    from clipdense.datasets.nouns import NounExtractor
    assert NounExtractor(nouns=['cherry', 'wolf'])('Cherries near wolves.') == \
        ['cherry', 'wolf']
    assert NounExtractor(nouns=['traffic light', 'cup'])('Traffic lights, cups.') == \
        ['traffic light', 'cup']


def test_noun_extractor_bad_input(tmp_path):
    from clipdense.datasets.nouns import NounExtractor, OpenNounExtractor
    with pytest.raises(TypeError, match='string'):
        OpenNounExtractor()(['a cup'])
    with pytest.raises(TypeError, match='string'):
        NounExtractor(nouns=['cup'])(['a cup'])
    with pytest.raises(ValueError, match='OpenNounExtractor'):
        NounExtractor()
    with pytest.raises(TypeError, match='list'):
        NounExtractor(nouns='cup')
    with pytest.raises(FileNotFoundError, match='noun list'):
        NounExtractor(noun_file=str(tmp_path / 'missing.txt'))
    with pytest.raises(ValueError, match='either'):
        NounExtractor(nouns=['cup'], noun_file='x')
    with pytest.raises(ValueError, match='empty'):
        OpenNounExtractor(table={})


def test_mining_writes_losslessly_masked_crops(tmp_path):
    import mmcv

    from clipdense.apis import init_model
    from clipdense.apis.ovseg_mining import mine_mask_noun_pairs
    from clipdense.models.region_classifiers import CLIP_MEAN
    from clipdense.testing.runs import make_tiny_world
    from clipdense.testing.ovseg import model_cfg
    world = tmp_path / 'w'
    make_tiny_world(world)
    cfg = Config(dict(default_scope='clipdense', model=model_cfg(),
                      test_pipeline=[dict(type='LoadImageFromFile'),
                                     dict(type='PackSegInputs')]))
    model = init_model(cfg)
    head = model.decode_head
    orig = head.predict_proposals

    def proposals(*a, **kw):  # an untrained model: make two masks certain
        cls, masks = orig(*a, **kw)
        masks = torch.full_like(masks, -10.0)
        masks[:, 0, 5:30, 5:25] = 10.0
        masks[:, 0, 5:12, 5:12] = -10.0  # cut corners: the crops' corners are fill
        masks[:, 1, 30:60, 10:60] = 10.0
        masks[:, 1, 30:36, 10:16] = -10.0
        return cls, masks
    head.predict_proposals = proposals
    recs = [dict(image='flat/img_dir/train/flat_train_00000.png',
                 caption='a photo of a cup and a ball on the grass.'),
            dict(image='flat/img_dir/train/flat_train_00001.png', caption='a photo.')]
    out = mine_mask_noun_pairs(model, recs, str(tmp_path / 'mined'), data_root=str(world))
    assert [p['caption'] for p in out['pairs']] == ['cup', 'ball', 'grass']
    assert out['num_images'] == 1
    lines = open(out['ann_file']).read().splitlines()
    assert [json.loads(line)['caption'] for line in lines] == ['cup', 'ball', 'grass']
    p = out['pairs'][0]
    crop = mmcv.imread(osp.join(tmp_path / 'mined', p['image']))[:, :, ::-1]
    assert crop.shape == (64, 64, 3)
    # the top-left corner of either proposal's box is background: stored with
    # the colour the authors' Maskget recovers the mask from, not CLIP's mean
    assert crop[0, 0].tolist() == [124, 116, 103] != [round(255 * m) for m in CLIP_MEAN]
    assert crop[-1, -1].tolist() != [124, 116, 103]
    mask = mmcv.imread(osp.join(tmp_path / 'mined', p['mask']), flag='unchanged')
    assert mask.shape == (64, 64) and set(mask.flatten().tolist()) == {0, 255}
    assert mask.sum() // 255 in (25 * 20 - 49, 30 * 50 - 36)
    with pytest.raises(ValueError, match='no captioned'):
        mine_mask_noun_pairs(model, [], str(tmp_path / 'x'))
