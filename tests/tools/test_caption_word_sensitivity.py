"""tools/analysis_tools/caption_word_sensitivity.py: the caption edits, and
the scoring on a few images with an untrained CLIP (plumbing only)."""
import json
import os.path as osp
import runpy

import cv2
import numpy as np
import open_clip
import torch

from clipdense.models.utils.clip_archs import register_clip_archs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/'
                               'caption_word_sensitivity.py'))


def test_each_kind_changes_only_its_words():
    rng = np.random.RandomState(0)
    rec = dict(caption='a photo of a red mug on the left and a knife. the '
               'mug is to the left of the knife.', classes=['mug', 'knife'],
               kind='scene')
    s = TOOL['make_swaps'](rec, rng)
    assert set(s) == {'object', 'colour', 'position'}
    # every 'mug' replaced by one class the image does not have
    new = s['object'].split()[5]
    assert 'mug' not in s['object'] and new not in ('mug', 'knife')
    assert s['object'].count(new) == 2 and 'knife' in s['object']
    assert 'red' not in s['colour'] and s['colour'].replace(
        s['colour'].split()[4], 'red') == rec['caption']
    assert s['position'] == rec['caption'].replace('left', 'right')
    part = TOOL['make_swaps'](dict(
        caption='a knife. the part to cut is the blade. the handle is for '
        'holding.', kind='parts', classes=['knife']), rng)
    assert part['part'] == ('a knife. the part to cut is the handle. the '
                            'blade is for holding.')
    defect = TOOL['make_swaps'](dict(caption='a photo of a scratched bottle.',
                                     kind='anomaly', defect='scratch'), rng)
    assert defect['state'] == 'a photo of a intact bottle.'
    good = TOOL['make_swaps'](dict(caption='a flawless capsule.',
                                   kind='anomaly', defect=None), rng)
    assert good['state'] == 'a scratched capsule.'
    assert TOOL['make_swaps'](dict(caption='the sky.', classes=['sky']),
                              rng) == {}


def test_scores_on_written_images(tmp_path):
    register_clip_archs()
    torch.manual_seed(0)
    w = str(tmp_path / 'vit8.pt')
    torch.save(open_clip.create_model('clipdense-synth-vit8').state_dict(), w)
    recs = []
    for i, (c, col) in enumerate([('ball', 'red'), ('cup', 'blue'),
                                  ('key', 'green')]):
        cv2.imwrite(str(tmp_path / f'{i}.png'),
                    np.full((128, 128, 3), 40 * i, np.uint8))
        recs.append(dict(image=f'{i}.png', caption=f'a {col} {c} on the left.',
                         classes=[c], kind='scene'))
    (tmp_path / 'val.jsonl').write_text(
        '\n'.join(json.dumps(r) for r in recs))
    res = TOOL['sensitivity']('clipdense-synth-vit8', w, str(tmp_path),
                              'val.jsonl')
    for k in ('object', 'colour', 'position', 'recall@1'):
        assert res[k]['n'] == 3 and 0 <= res[k]['score'] <= 100
    assert res['state'] == dict(n=0, score=None)
