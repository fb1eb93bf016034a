"""tools/analysis_tools/proxy_clip_selection.py: the rule on written scores,
and the whole script on untrained weights and a tiny world."""
import json
import os.path as osp
import runpy
from collections import OrderedDict

import cv2
import numpy as np
import open_clip
import pytest
import torch

from clipdense.datasets.synthetic import generate_world
from clipdense.models.utils.clip_archs import register_clip_archs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/'
                               'proxy_clip_selection.py'))


def s(zs, obj, state):
    return dict(zero_shot_top1=zs, object=obj, state=state)


def test_rule_adopts_the_best_object_reader_only_if_it_beats_the_reference():
    ref = ('v1', s(17.5, 70.0, 82.2))
    # the real selection: A adopted, B (higher zero-shot than v1 but fewer
    # object nouns than A) not
    scores = OrderedDict([ref, ('A', s(39.5, 73.1, 84.9)),
                          ('B', s(36.5, 68.9, 67.1))])
    name, why = TOOL['choose'](scores, 75)
    assert name == 'A' and 'beats v1' in why
    # the best object reader fails one condition -> keep the reference
    for bad, word in ((s(39.5, 69.0, 84.9), 'object'),
                      (s(17.0, 73.1, 84.9), 'zero-shot'),
                      (s(39.5, 73.1, 60.0), 'state'),
                      (s(39.5, 73.1, None), 'state')):
        name, why = TOOL['choose'](OrderedDict([ref, ('C', bad)]), 75)
        assert name == 'v1' and word in why, (bad, why)
    assert TOOL['choose'](OrderedDict([ref]), 75)[0] == 'v1'


def test_candidate_argument():
    assert TOOL['parse_candidate']('A: x=1, y=2=w/a.pt') == ('A: x=1, y=2',
                                                            'w/a.pt')
    import argparse
    for bad in ('no-weights', '=w.pt', 'A='):
        with pytest.raises(argparse.ArgumentTypeError, match='NAME=WEIGHTS'):
            TOOL['parse_candidate'](bad)


def test_script_on_untrained_weights(tmp_path):
    world = generate_world(str(tmp_path / 'world'), size=128, num_train=1,
                           num_val=1, styles=('flat', ),
                           parts=('classification', ), num_cls_per_class=1,
                           progress=False)
    rich = tmp_path / 'rich'
    rich.mkdir()
    recs = []
    for i, (c, col) in enumerate([('ball', 'red'), ('cup', 'blue')]):
        cv2.imwrite(str(rich / f'{i}.png'),
                    np.full((128, 128, 3), 60 * i, np.uint8))
        recs.append(dict(image=f'{i}.png', caption=f'a {col} {c} on the left.',
                         classes=[c], kind='scene'))
    (rich / 'clip_val.jsonl').write_text('\n'.join(map(json.dumps, recs)))
    register_clip_archs()
    ws = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        ws.append(str(tmp_path / f'{seed}.pt'))
        torch.save(open_clip.create_model('clipdense-synth-vit8').state_dict(),
                   ws[-1])
    out = tmp_path / 'sel'
    adopted, scores = TOOL['main']([
        '--candidate', f'ref={ws[0]}',
        '--candidate', f'new one={ws[1]}', '--data-root', world['root'],
        '--rich-root', str(rich), '--out', str(out)])
    assert list(scores) == ['ref', 'new one']
    # no state words in these captions: the rule keeps the reference
    assert adopted == 'ref'
    for v in scores.values():
        assert 0 <= v['zero_shot_top1'] <= 100
        assert v['state'] is None and 0 <= v['object'] <= 100
    md = open(str(out) + '.md').read()
    assert f'| {adopted} (adopted) |' in md
    assert '"--candidate" "new one=' not in md and '"new one=' in md
    saved = json.load(open(str(out) + '.json'))
    assert saved['adopted'] == adopted and len(saved['candidates']) == 2
    with pytest.raises(SystemExit, match='no weights'):
        TOOL['main'](['--candidate', 'x=' + str(tmp_path / 'none.pt')])
