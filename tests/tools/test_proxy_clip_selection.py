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


def d(zs, obj, state, dense):
    return dict(s(zs, obj, state), dense=dense)


def test_dense_rule_needs_the_gain_and_bounds_the_losses():
    ref = ('A', d(39.5, 73.1, 84.9, 2.0))
    ok = d(35.0, 68.5, 80.0, 3.0)         # 1.5x dense, 4.5 / 4.6 points lost
    name, why = TOOL['choose_dense'](OrderedDict([ref, ('C', ok)]), 75)
    assert name == 'C' and 'highest dense score' in why
    # the highest dense score is the one judged, even if another passes
    name, why = TOOL['choose_dense'](OrderedDict(
        [ref, ('C', ok), ('E', d(10.0, 73.1, 84.9, 9.0))]), 75)
    assert name == 'A' and 'E has the highest dense' in why
    for bad, word in ((d(39.5, 73.1, 84.9, 2.9), 'dense'),
                      (d(34.0, 73.1, 84.9, 5.0), 'zero-shot'),
                      (d(39.5, 68.0, 84.9, 5.0), 'object'),
                      (d(39.5, None, 84.9, 5.0), 'object none'),
                      (d(39.5, 73.1, 70.0, 5.0), 'state')):
        name, why = TOOL['choose_dense'](OrderedDict([ref, ('C', bad)]), 75)
        assert name == 'A' and word in why, (bad, why)
    # the thresholds are arguments
    assert TOOL['choose_dense'](OrderedDict(
        [ref, ('C', d(39.5, 73.1, 84.9, 2.9))]), 75, gain=1.4)[0] == 'C'
    assert TOOL['choose_dense'](OrderedDict([ref]), 75)[0] == 'A'


def a(zs, obj, state, dense, anomaly):
    return dict(d(zs, obj, state, dense), anomaly=anomaly)


def test_anomaly_rule_needs_the_gain_and_keeps_the_dense_score():
    ref = ('G', a(64.0, 79.4, 84.9, 22.4, 66.4))
    ok = a(59.5, 74.9, 80.0, 18.0, 71.4)  # +5.0, 0.80x dense, -4.5 points
    name, why = TOOL['choose_anomaly'](OrderedDict([ref, ('H', ok)]), 75)
    assert name == 'H' and 'highest anomaly score' in why
    # the highest anomaly score is the one judged, even if another passes
    name, why = TOOL['choose_anomaly'](OrderedDict(
        [ref, ('H', ok), ('I', a(64.0, 79.4, 84.9, 5.0, 90.0))]), 75)
    assert name == 'G' and 'I has the highest anomaly' in why and \
        'dense 5.00 < 0.8 x 22.40' in why
    for bad, word in ((a(64.0, 79.4, 84.9, 22.4, 71.3), 'anomaly'),
                      (a(64.0, 79.4, 84.9, 17.9, 80.0), 'dense'),
                      (a(58.9, 79.4, 84.9, 22.4, 80.0), 'zero-shot'),
                      (a(64.0, 74.3, 84.9, 22.4, 80.0), 'object'),
                      (a(64.0, 79.4, 74.0, 22.4, 80.0), 'state')):
        name, why = TOOL['choose_anomaly'](OrderedDict([ref, ('H', bad)]), 75)
        assert name == 'G' and word in why, (bad, why)
    assert TOOL['choose_anomaly'](OrderedDict([ref]), 75)[0] == 'G'


def test_candidate_argument():
    assert TOOL['parse_candidate']('A: x=1, y=2=w/a.pt') == ('A: x=1, y=2',
                                                            'w/a.pt')
    assert TOOL['parse_candidate']('A=w/a.pt@clipdense-synth-vit8-avg') == (
        'A', 'w/a.pt', 'clipdense-synth-vit8-avg')
    import argparse
    for bad in ('no-weights', '=w.pt', 'A=', 'A=w.pt@', 'A=@arch'):
        with pytest.raises(argparse.ArgumentTypeError, match='NAME=WEIGHTS'):
            TOOL['parse_candidate'](bad)


def test_script_on_untrained_weights(tmp_path):
    world = generate_world(str(tmp_path / 'world'), size=128, num_train=1,
                           num_val=1, styles=('flat', ),
                           parts=('classification', 'seg'), num_cls_per_class=1,
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
    with pytest.raises(SystemExit, match='unknown architecture'):
        TOOL['main'](['--candidate', f'x={ws[0]}@no-such-arch'])

    # the dense rule, with a candidate of the average-pooling architecture
    torch.manual_seed(2)
    avg = str(tmp_path / 'avg.pt')
    torch.save(open_clip.create_model('clipdense-synth-vit8-avg').state_dict(),
               avg)
    adopted, scores = TOOL['main']([
        '--candidate', f'ref={ws[0]}', '--candidate',
        f'avg={avg}@clipdense-synth-vit8-avg', '--rule', 'dense',
        '--data-root', world['root'], '--rich-root', str(rich),
        '--out', str(out)])
    assert adopted == 'ref'   # untrained: no state words, no gain
    for v in scores.values():
        assert 0 <= v['naive_dense_train'] <= 100
        assert 0 <= v['maskclip_value_train'] <= 100
        assert v['dense'] == pytest.approx(
            (v['naive_dense_train'] + v['maskclip_value_train']) / 2)
    saved = json.load(open(str(out) + '.json'))
    assert saved['rule'] == 'dense'
    assert [c['arch'] for c in saved['candidates']] == [
        'clipdense-synth-vit8', 'clipdense-synth-vit8-avg']
    assert '`clipdense-synth-vit8-avg`' in open(str(out) + '.md').read()

    # the anomaly rule needs a corpus with anomaly label maps (version 4)
    with pytest.raises(SystemExit, match='no rich-caption corpus'):
        TOOL['main'](['--candidate', f'ref={ws[0]}', '--candidate',
                      f'b={ws[1]}', '--rule', 'anomaly', '--data-root',
                      world['root'], '--rich-root', str(rich)])
    from clipdense.datasets.synthetic.rich_captions import (
        MARKER, generate_rich_captions)
    corpus = generate_rich_captions(str(tmp_path / 'corpus'), seed=0,
                                    size=128, num_train=1, num_val=16,
                                    progress=False)['root']
    rows = [json.loads(x) for x in open(osp.join(corpus, 'clip_val.jsonl'))]
    assert any(r['kind'] == 'anomaly' and r['defect'] for r in rows)
    adopted, scores = TOOL['main']([
        '--candidate', f'ref={ws[0]}', '--candidate', f'b={ws[1]}',
        '--rule', 'anomaly', '--data-root', world['root'], '--rich-root',
        corpus, '--out', str(out)])
    for v in scores.values():
        assert 0 <= v['anomaly'] <= 100 and 0 <= v['anomaly_naive'] <= 100
        assert 'dense' in v
    assert scores['ref']['anomaly'] != scores['b']['anomaly']
    saved = json.load(open(str(out) + '.json'))
    assert saved['rule'] == 'anomaly' and saved['anomaly_gain'] == 5.0
    marker = json.load(open(osp.join(corpus, MARKER)))
    marker['version'] = 3
    with open(osp.join(corpus, MARKER), 'w') as f:
        json.dump(marker, f)
    with pytest.raises(SystemExit, match='version 4'):
        TOOL['main'](['--candidate', f'ref={ws[0]}', '--candidate',
                      f'b={ws[1]}', '--rule', 'anomaly', '--data-root',
                      world['root'], '--rich-root', corpus])
