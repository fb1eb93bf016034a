"""tools/train.py, tools/test.py and mm2openclip under careless input (issue
26): a missing config, misspelt --cfg-options keys, truncated checkpoints
and checkpoints of another model end with one ``error:`` line (exit status
2), not a traceback. docs/robustness.md lists the cases."""
import importlib.util
import os.path as osp

import pytest
import torch

from clipdense.testing.runs import PY, ROOT, TINY_CONFIG, run_tool, tiny_options


def load_tool(rel):
    spec = importlib.util.spec_from_file_location(
        'tool_' + osp.basename(rel)[:-3], osp.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_main(rel, argv, capsys):
    from clipdense.engine.launch import run_main as run
    with pytest.raises(SystemExit) as exc:
        run(load_tool(rel).main, argv)
    out = capsys.readouterr()
    return exc.value.code, out.out + out.err


def tiny_state_dict(num_classes=13):
    from clipdense.apis import init_model
    model = init_model(TINY_CONFIG, cfg_options={
        'model.decode_head.num_classes': num_classes})
    return model.state_dict()


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp('ckpts')
    good = d / 'good.pth'
    torch.save({'state_dict': tiny_state_dict(), 'meta': {}}, good)
    other = d / 'five_classes.pth'
    torch.save({'state_dict': tiny_state_dict(5), 'meta': {}}, other)
    nothing = d / 'nothing.pth'
    torch.save({'state_dict': {'foo.weight': torch.zeros(3)}}, nothing)
    cut = d / 'truncated.pth'
    cut.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    return dict(good=str(good), other=str(other), nothing=str(nothing), cut=str(cut))


def test_missing_config_is_one_error_line(tmp_path):
    for tool in ('tools/train.py', 'tools/test.py'):
        args = [PY, tool, str(tmp_path / 'nope.py')] + \
            (['none'] if tool.endswith('test.py') else [])
        proc = run_tool(args, check=False, timeout=300)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert 'error: config file not found' in proc.stderr
        assert 'Traceback' not in proc.stderr


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_cfg_options_typo_names_the_closest_key(tool, tiny_world, tmp_path, capsys):
    argv = [TINY_CONFIG] + (['none'] if tool.endswith('test.py') else []) + \
        ['--work-dir', str(tmp_path), *tiny_options(tiny_world, 1, 1),
         'model.test_cfg.labels_onyl=True']
    code, out = run_main(tool, argv, capsys)
    assert code == 2
    assert 'error: --cfg-options model.test_cfg.labels_onyl' in out
    assert 'did you mean model.test_cfg.labels_only?' in out


def test_truncated_and_mismatched_checkpoints(tiny_world, checkpoints, tmp_path, capsys):
    def test(ckpt, *extra):
        return run_main('tools/test.py', [TINY_CONFIG, ckpt, '--work-dir', str(tmp_path),
                                          *extra, *tiny_options(tiny_world, 1, 1)], capsys)
    code, out = test(checkpoints['cut'])
    assert code == 2 and 'truncated' in out and checkpoints['cut'] in out
    code, out = test(checkpoints['other'])
    assert code == 2 and 'does not fit the model' in out
    assert 'decode_head.conv_seg.weight (checkpoint (5, 64, 1, 1), model (13, 64, 1, 1))' in out
    assert '--allow-partial-load' in out
    code, out = test(checkpoints['nothing'])
    assert code == 2 and 'no key matches at all' in out and 'foo.weight' in out
    # the matching checkpoint evaluates; a partial load runs when asked for
    for ckpt, extra in ((checkpoints['good'], ()),
                        (checkpoints['other'], ('--allow-partial-load', ))):
        code, out = test(ckpt, *extra)
        assert code == 0, out[-3000:]
        assert 'mIoU' in out


class Evil:
    def __reduce__(self):
        return (print, ('pwned', ))


def test_mm2openclip_errors(checkpoints, tmp_path, capsys):
    code, out = run_main('tools/model_converters/mm2openclip.py',
                         [checkpoints['cut'], str(tmp_path / 'o.pt')], capsys)
    assert code == 2 and 'truncated' in out
    code, out = run_main('tools/model_converters/mm2openclip.py',
                         [checkpoints['good'], str(tmp_path / 'o.pt')], capsys)
    assert code == 2 and 'no "clip.*" keys' in out
    # the refusal of a pickled checkpoint names a flag this tool has
    bad = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Evil()}, bad)
    code, out = run_main('tools/model_converters/mm2openclip.py',
                         [str(bad), str(tmp_path / 'o.pt')], capsys)
    assert code == 2 and 'Refusing to load' in out and 'mm2openclip.py' in out
    assert 'pwned' not in out
    assert '--trust-checkpoint' in load_tool(
        'tools/model_converters/mm2openclip.py').__doc__ + out
