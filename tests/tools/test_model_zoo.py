"""docs/model_zoo.md is what tools/model_zoo.py writes from the metafiles,
every config has a metafile entry, and bad metafiles are refused with the
file named."""
import glob
import importlib.util
import os.path as osp

import pytest

from clipdense.utils.metafiles import (all_models, read_metafile,
                                       synthetic_value)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'model_zoo', osp.join(ROOT, 'tools', 'model_zoo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


zoo = load_tool()


def test_page_is_up_to_date():
    with open(osp.join(ROOT, 'docs', 'model_zoo.md'), encoding='utf-8') as f:
        committed = f.read()
    assert committed == zoo.render(), (
        'docs/model_zoo.md is stale: run `python tools/model_zoo.py` and commit it')


def test_check_flag(tmp_path, capsys):
    out = tmp_path / 'zoo.md'
    assert zoo.main(['--out', str(out)]) == 0
    assert zoo.main(['--out', str(out), '--check']) == 0
    out.write_text(out.read_text() + 'edited by hand\n')
    assert zoo.main(['--out', str(out), '--check']) == 1
    assert 'stale' in capsys.readouterr().err


def test_every_config_has_an_entry():
    configs = {osp.relpath(p, ROOT).replace(osp.sep, '/')
               for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
               if '/_base_/' not in p.replace(osp.sep, '/')}
    listed = [m['Config'] for m in all_models(ROOT)]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    missing = sorted(configs - set(listed))
    assert not missing, f'configs without a metafile entry: {missing}'
    assert len(configs) > 0


def test_page_content():
    text = zoo.render()
    models = all_models(ROOT)
    for m in models:
        assert f'`{osp.basename(m["Config"])[:-3]}`' in text
        assert m['Config'] in text  # its commands
    # paper numbers are marked as the paper's; synthetic ones link their file
    assert 'mIoU 49.5 (paper)' in text  # MaskCLIP ViT-B/16 VOC-20
    maskclip = next(m for m in models if m['Config'].endswith(
        'maskclip_clip-synth-rn_synthetic-128x128.py'))
    value = synthetic_value(maskclip['Synthetic'], ROOT)
    assert f'{value:.2f} mIoU, flat val ([maskclip_synthetic.json]' in text
    assert 'python tools/test.py configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py none' in text
    assert 'tools/dist_train.sh configs/denseclip/denseclip_rn50-openai_8xb4-80k_ade20k-512x512.py 8' in text


def write(tmp_path, text, name='metafile.yml'):
    # a metafile beside a real config folder's configs: put it in that folder's name
    d = tmp_path / 'configs' / 'maskclip'
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(text)
    return str(p)


GOOD = """Collection: {Name: X, Task: semseg}
Models:
  - Config: maskclip_clip-synth-rn_synthetic-128x128.py
    Backbone: b
    Dataset: d
    Crop: '1'
    Schedule: s
"""


@pytest.mark.parametrize('text,msg', [
    ('Models: []\n', 'Collection'),
    ('Collection: {Name: X, Task: painting}\nModels: []\n', 'Task'),
    (GOOD.replace('    Schedule: s\n', ''), "lacks ['Schedule']"),
    (GOOD + '    Colour: red\n', 'unknown keys'),
    (GOOD.replace('maskclip_clip-synth', 'nothing_here'), 'does not exist'),
    (GOOD + '    Synthetic: {File: x.json}\n', 'Synthetic needs'),
    ('Collection: {Name: X, Task: semseg\n', 'not valid YAML'),
])
def test_bad_metafile(tmp_path, monkeypatch, text, msg):
    import clipdense.utils.metafiles as mf
    monkeypatch.setattr(mf, 'repo_root', lambda: str(tmp_path))
    (tmp_path / 'configs' / 'maskclip').mkdir(parents=True)
    (tmp_path / 'configs' / 'maskclip' / 'maskclip_clip-synth-rn_synthetic-128x128.py').write_text('')
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match='metafile.yml') as e:
        read_metafile(path)
    assert msg in str(e.value)


def test_synthetic_key(tmp_path):
    (tmp_path / 'r.json').write_text('{"rows": [{"name": "a", "v": 1}, {"name": "b", "v": 2.5}]}')
    spec = dict(File='r.json', Metric='m')
    assert synthetic_value(dict(spec, Key=['rows', {'name': 'b'}, 'v']), str(tmp_path)) == 2.5
    assert synthetic_value(dict(spec, Key=['rows', -1, 'v']), str(tmp_path)) == 2.5
    with pytest.raises(KeyError, match='no list item'):
        synthetic_value(dict(spec, Key=['rows', {'name': 'c'}, 'v']), str(tmp_path))
    with pytest.raises(KeyError, match="no key 'w'"):
        synthetic_value(dict(spec, Key=['rows', 0, 'w']), str(tmp_path))
    assert synthetic_value(dict(spec, File='none.json', Key=['x']), str(tmp_path)) is None


def test_converter_cell_follows_the_repository():
    """'convert with ...' only once the converter script exists."""
    base = dict(Config='configs/x/y.py', **{'Training-free': False})
    there = dict(base, Converter=dict(Script='tools/model_zoo.py', Released='their ckpts',
                                      Usage='python tools/model_zoo.py A B'))
    assert zoo.weights_cell(there) == 'their ckpts: `python tools/model_zoo.py A B`'
    absent = dict(base, Converter=dict(Script='tools/model_converters/nope2clipdense.py',
                                       Released='their ckpts'))
    assert zoo.weights_cell(absent) == 'no converter yet for their ckpts'
    assert zoo.weights_cell(dict(base, **{'Training-free': True})) == 'none (training-free)'
