"""tools/analysis_tools/ablations_table.py: the margin / seed-spread rules
and the table built from the proxy benches' ``"ablation"`` entries."""
import json
import os.path as osp
import runpy

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TABLE = runpy.run_path(osp.join(ROOT, 'tools/analysis_tools/ablations_table.py'))


def entry(claim, arms, order, det=(), higher=True):
    return dict(claim=claim, seeds=[0, 1, 2], schedule='3 epochs',
                note='why', metrics=[dict(
                    name='mIoU', higher_is_better=higher, order=order,
                    arms=arms, deterministic=list(det))])


def test_margin_beyond_twice_the_spread():
    row = TABLE['summarize'](entry('c', {'A': [10, 11, 12], 'B': [5, 5.5, 6]},
                                   ['A', 'B']))
    # margin 11 - 5.5 = 5.5, spread max(2, 1) = 2 -> beyond, also 5.5 > 4
    assert row['reproduced'] == 'yes'
    assert row['beyond'] == 'yes (above twice the spread)'
    assert '+5.50' in row['margin'] and ': 2.00' in row['spread']


def test_margin_inside_the_spread_and_wrong_direction():
    inside = TABLE['summarize'](entry('c', {'A': [10, 14, 12], 'B': [9, 11, 10]},
                                      ['A', 'B']))
    assert inside['reproduced'] == 'yes' and inside['beyond'] == 'no'
    # margin 3 against spread 2: beyond it, but not twice it
    between = TABLE['summarize'](entry('c', {'A': [12, 13, 14], 'B': [10, 10, 10]},
                                       ['A', 'B']))
    assert between['beyond'] == 'yes (between 1x and 2x the spread)'
    wrong = TABLE['summarize'](entry('c', {'A': [1, 2, 3], 'B': [5, 5, 5]},
                                     ['A', 'B'], det=['B']))
    assert wrong['reproduced'] == 'no' and wrong['beyond'] == 'no'


def test_lower_is_better_and_deterministic_arms():
    # KLD: lower is better; the trained arm has 3 seeds, the frozen one is
    # deterministic, so the step's spread is the trained arm's
    row = TABLE['summarize'](entry('c', {'head': [1.0, 1.1, 1.2], 'frozen': [2.0]},
                                   ['head', 'frozen'], det=['frozen'],
                                   higher=False))
    assert row['reproduced'] == 'yes' and row['beyond'].startswith('yes')
    both = TABLE['summarize'](entry('c', {'A': [3.0], 'B': [2.0]}, ['A', 'B'],
                                    det=['A', 'B']))
    assert both['reproduced'] == 'yes'
    assert both['beyond'].startswith('no seed spread')
    one = TABLE['summarize'](entry('c', {'A': [3.0], 'B': [2.0]}, ['A', 'B']))
    assert one['beyond'] == 'not measured'


def test_every_step_of_a_chain_must_hold():
    arms = {'TTA': [70, 71, 69], 'TF': [45.0], 'CLIP': [50.0]}
    row = TABLE['summarize'](entry('c', arms, ['TTA', 'TF', 'CLIP'],
                                   det=['TF', 'CLIP']))
    assert row['reproduced'] == 'no'  # TF < CLIP breaks the chain


def test_malformed_entry_names_the_problem():
    with pytest.raises(ValueError, match='missing'):
        TABLE['summarize'](entry('c', {'A': [1]}, ['A', 'B']))
    with pytest.raises(ValueError, match='no "metrics"'):
        TABLE['summarize'](dict(claim='c'))


def test_table_from_results_files(tmp_path):
    claim = 'ReCo+ > ReCo'
    (tmp_path / 'reco_proxy.json').write_text(json.dumps(dict(
        ablation=entry(claim, {'ReCo+': [12, 13, 14], 'ReCo': [9.0]},
                       ['ReCo+', 'ReCo'], det=['ReCo']))))
    (tmp_path / 'other_proxy.json').write_text(json.dumps(dict(rows=[])))
    rows = TABLE['main'](['--results-dir', str(tmp_path),
                          '--out', str(tmp_path / 'ablations')])
    assert len(rows) == 8
    filled = [r for r in rows if r['reproduced'] != 'not rerun']
    assert [r['claim'] for r in filled] == [claim]
    # margin 4 against spread 2: beyond it, exactly twice is not above twice
    assert filled[0]['beyond'] == 'yes (between 1x and 2x the spread)'
    md = (tmp_path / 'ablations.md').read_text()
    assert 'Command: `python tools/analysis_tools/ablations_table.py' in md
    assert 'Reproduced in direction: 1 of 1 rerun (8 claims)' in md
    (tmp_path / 'bad_proxy.json').write_text(json.dumps(dict(
        ablation=entry('a claim nobody makes', {'A': [1], 'B': [0]},
                       ['A', 'B']))))
    with pytest.raises(SystemExit, match='claims not in the table'):
        TABLE['main'](['--results-dir', str(tmp_path),
                       '--out', str(tmp_path / 'ablations2')])


def test_earlier_proxy_column(tmp_path):
    claim = 'ReCo+ > ReCo'
    new, old = tmp_path / 'new', tmp_path / 'old'
    new.mkdir()
    old.mkdir()
    (new / 'reco_proxy.json').write_text(json.dumps(dict(
        ablation=entry(claim, {'ReCo+': [12, 13, 14], 'ReCo': [9.0]},
                       ['ReCo+', 'ReCo'], det=['ReCo']))))
    (old / 'reco_proxy.json').write_text(json.dumps(dict(
        ablation=entry(claim, {'ReCo+': [3, 4, 5], 'ReCo': [5.0]},
                       ['ReCo+', 'ReCo'], det=['ReCo']))))
    rows = TABLE['main'](['--results-dir', str(new), '--compare', str(old),
                          '--out', str(tmp_path / 'ab')])
    row = next(r for r in rows if r['claim'] == claim)
    (name, e), = row['earlier'].items()
    assert name == str(old)
    assert row['reproduced'] == 'yes' and e['reproduced'] == 'no'
    assert 'ReCo+ - ReCo: -1.00' in e['text']
    other = next(r for r in rows if r['claim'] != claim)
    assert other['earlier'][name]['text'] == 'not rerun'
    md = (tmp_path / 'ab.md').read_text()
    assert 'earlier proxy' in md and 'Earlier proxy' in md
    assert '0 in direction, 0 beyond the seed spread' in md
    # two earlier proxies, oldest first: a column and a count each; a
    # missing folder is skipped
    older = tmp_path / 'older'
    older.mkdir()
    (older / 'reco_proxy.json').write_text(json.dumps(dict(
        ablation=entry(claim, {'ReCo+': [12, 13, 14], 'ReCo': [1.0]},
                       ['ReCo+', 'ReCo'], det=['ReCo']))))
    rows = TABLE['main'](['--results-dir', str(new), '--compare', str(older),
                          str(old), str(tmp_path / 'missing'),
                          '--out', str(tmp_path / 'ab3')])
    row = next(r for r in rows if r['claim'] == claim)
    assert list(row['earlier']) == [str(older), str(old)]
    assert [e['reproduced'] for e in row['earlier'].values()] == ['yes', 'no']
    md = (tmp_path / 'ab3.md').read_text()
    assert md.count('| earlier proxy (`') == 2
    assert f'Earlier proxy (`{older}`): 1 in direction' in md
    assert f'Earlier proxy (`{old}`): 0 in direction' in md
    # no folder, or "": no column
    for cmp in ([''], [str(tmp_path / 'missing')], []):
        rows = TABLE['main'](['--results-dir', str(new), '--compare', *cmp,
                              '--out', str(tmp_path / 'ab2')])
        assert 'earlier' not in rows[0]
        assert 'arlier proxy' not in (tmp_path / 'ab2.md').read_text()


def test_a_margin_that_rounds_to_zero_is_a_tie():
    # the VLTSeg row on the second proxy: 15.9078 vs 15.9034 (+0.0044)
    tie = TABLE['summarize'](entry(
        'c', {'A': [15.8, 15.72, 16.2033], 'B': [15.5167, 16.0967, 16.0967]},
        ['A', 'B']))
    assert tie['margin'] == 'A - B: +0.00'
    assert tie['reproduced'] == 'no' and tie['beyond'] == 'no'
    small = TABLE['summarize'](entry('c', {'A': [1.006], 'B': [1.0]},
                                     ['A', 'B'], det=['A', 'B']))
    assert small['reproduced'] == 'yes'
