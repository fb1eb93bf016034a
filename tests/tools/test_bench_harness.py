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


BENCH_SCRIPTS = ('affordance', 'anomaly', 'denseclip', 'denseclip_det', 'maskclip', 'ovseg',
                 'reco', 'vltseg')


def test_bench_scripts_use_the_harness():
    """No script keeps its own logger, hasher or direct Runner.from_cfg."""
    for name in BENCH_SCRIPTS:
        src = open(osp.join(ROOT, f'tools/analysis_tools/bench_{name}.py')).read()
        assert 'clipdense.engine.bench_harness import' in src, name
        assert 'Runner.from_cfg' not in src and 'def log(' not in src, name
        assert 'hashlib' not in src, name


def test_bench_scripts_do_not_shadow_the_harness():
    """A script's own function named like a harness function it imports
    replaces the import: its call to the harness then calls itself (a
    ``write_results(args, ...)`` that crashed at the end of a long run)."""
    import ast
    for name in BENCH_SCRIPTS:
        tree = ast.parse(open(osp.join(ROOT, f'tools/analysis_tools/bench_{name}.py')).read())
        imported = {a.asname or a.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module
                    and node.module.endswith('bench_harness') for a in node.names}
        defined = {node.name for node in tree.body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        assert not imported & defined, (name, imported & defined)


def test_bench_maskclip_runs_the_shipped_model():
    """Issue 23: the MaskCLIP benchmark runs the shipped config through the
    test loop; it has no forward pass, sliding window or attention pool of
    its own."""
    import ast
    src = open(osp.join(ROOT, 'tools/analysis_tools/bench_maskclip.py')).read()
    assert 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py' in src
    assert 'build_runner(cfg)' in src and 'runner.test()' in src
    used = {n.attr for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Attribute)}
    copied = {'attnpool', 'k_proj', 'interpolate', 'refine', 'einsum',
              'data_preprocessor'} & used
    assert not copied, copied


def test_loss_curve_means_over_stretches():
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from clipdense.engine.bench_harness import loss_curve
    hub = MessageHub.get_instance('test_loss_curve')
    for v in [4.0, 2.0, 3.0, 1.0, 2.0, 0.0]:
        hub.update_scalar('train/loss', v)
    runner = SimpleNamespace(message_hub=hub)
    assert loss_curve(runner, points=3) == [3.0, 2.0, 1.0]
    assert loss_curve(runner, points=10) == [4.0, 2.0, 3.0, 1.0, 2.0, 0.0]
    empty = SimpleNamespace(message_hub=MessageHub.get_instance('test_loss_curve_empty'))
    assert loss_curve(empty) == []
