"""clipdense.engine.bench_harness: the plumbing of tools/analysis_tools/bench_*.py."""
import hashlib
import json
import os.path as osp

import pytest

from clipdense.engine import bench_harness as bh
from clipdense.testing.runs import ROOT


def old_hash(*parts, as_json=True):
    """The hasher bench_ovseg.py (json) and bench_vltseg.py (str) carried, so
    that their cached steps keep their keys."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, str) and osp.isfile(p):
            with open(p, 'rb') as f:
                h.update(f.read())
        else:
            h.update((json.dumps(p, sort_keys=True, default=str) if as_json else str(p))
                     .encode())
    return h.hexdigest()[:16]


def test_cache_key_keeps_the_scripts_keys(tmp_path):
    f = tmp_path / 'w.pt'
    f.write_bytes(b'abc')
    parts = (str(f), {'b': 1, 'a': [1, 2]}, 400, 'not a file')
    assert bh.cache_key(*parts) == old_hash(*parts)
    assert bh.cache_key(*parts, encode='str') == old_hash(*parts, as_json=False)
    assert bh.cache_key(*parts) != bh.cache_key(*parts, encode='str')
    before = bh.cache_key(*parts)
    f.write_bytes(b'abd')  # a file counts by its content
    assert bh.cache_key(*parts) != before
    with pytest.raises(ValueError, match='encode'):
        bh.cache_key(1, encode='yaml')


def test_log_table_command_and_results(tmp_path, capsys):
    bh.make_log('bench_x')('hello')
    bh.make_log('bench_y', stderr=True)('there')
    out = capsys.readouterr()
    assert out.out == '[bench_x] hello\n' and out.err == '[bench_y] there\n'
    assert bh.md_table(['a', 'b'], [[1, 2.5]]) == ['| a | b |', '| --- | --- |', '| 1 | 2.5 |']
    assert bh.command_line('bench_x.py', ['--iters', '3']) == \
        'python tools/analysis_tools/bench_x.py --iters 3'
    assert bh.repo_root(osp.join(ROOT, 'tools/analysis_tools/bench_reco.py')) == ROOT
    for atomic in (True, False):
        d = tmp_path / str(atomic) / 'sub'
        bh.write_results(str(d / 'r.md'), '# t\n', str(d / 'r.json'), {'b': 1, 'a': 2},
                         atomic=atomic, indent=1, sort_keys=True)
        assert (d / 'r.md').read_text() == '# t\n'
        assert (d / 'r.json').read_text() == json.dumps({'a': 2, 'b': 1}, indent=1)


def test_bench_scripts_use_the_harness():
    """No script keeps its own logger, hasher or direct Runner.from_cfg
    (bench_maskclip.py and bench_anomaly.py are converted separately)."""
    for name in ('affordance', 'denseclip', 'denseclip_det', 'ovseg', 'reco', 'vltseg'):
        src = open(osp.join(ROOT, f'tools/analysis_tools/bench_{name}.py')).read()
        assert 'clipdense.engine.bench_harness import' in src, name
        assert 'Runner.from_cfg' not in src and 'def log(' not in src, name
        assert 'hashlib' not in src, name
