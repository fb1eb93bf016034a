"""demo/image_demo.py under careless input (issue 26): one-class
vocabularies, outputs that would overwrite each other, bad checkpoints and
configs, --cfg-options typos, EXIF orientation, pixel limits. The cases
are listed in docs/robustness.md."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest

from clipdense.testing import register_tiny_models
from clipdense.testing.runs import ROOT

register_tiny_models()

CONFIG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')
TINY = ['model.backbone.arch=clipdense-tiny-rn', 'model.backbone.pretrained=None',
        'model.decode_head.text_encoder.arch=clipdense-tiny-rn',
        'model.decode_head.text_encoder.pretrained=None']


def load_demo():
    spec = importlib.util.spec_from_file_location(
        'image_demo_robustness', osp.join(ROOT, 'demo/image_demo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


demo = load_demo()


def run(args, capsys, tiny=True):
    code = demo.main(args + (['--cfg-options', *TINY] if tiny else []))
    out = capsys.readouterr()
    return code, out.out, out.err


def write_image(path, seed=0, size=(48, 40)):
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 255, size + (3, ), np.uint8)
    assert cv2.imwrite(str(path), img)
    return img


def test_one_class_vocabulary(tmp_path, capsys):
    img = tmp_path / 'a.png'
    write_image(img)
    out, mask = tmp_path / 'o.png', tmp_path / 'm.png'
    code, stdout, err = run([str(img), CONFIG, '--vocabulary', 'cat', '--out-file',
                             str(out), '--out-mask', str(mask)], capsys)
    assert code == 0, err
    m = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    assert m.shape == (48, 40) and m.max() <= 1
    assert cv2.imread(str(out)).shape == (48, 40, 3)
    code, _, err = run([str(img), CONFIG, '--vocabulary', 'background',
                        '--out-file', str(tmp_path / 'x.png')], capsys)
    assert code == 2 and 'error: the vocabulary' in err and 'name the thing' in err
    assert not (tmp_path / 'x.png').exists()


def test_unique_output_names():
    u = demo.unique_output_names
    assert u(['a.jpg', 'b.png']) == ['a.png', 'b.png']
    assert u(['cat.jpg', 'cat.png', 'dog.jpg']) == ['cat.jpg.png', 'cat.png.png',
                                                    'dog.png']
    # sub-folders kept; the same name in two folders does not collide
    assert u([osp.join('x', 'cat.jpg'), osp.join('y', 'cat.jpg')]) == \
        [osp.join('x', 'cat.png'), osp.join('y', 'cat.png')]
    # letter case (case-insensitive file systems) and a literal clash
    assert u(['Cat.jpg', 'cat.png']) == ['Cat.jpg.png', 'cat.png.png']
    names = u(['cat.jpg', 'cat.png', 'cat.jpg.png'])
    assert len({n.lower() for n in names}) == 3


def test_folder_outputs_never_overwrite(tmp_path, capsys):
    src = tmp_path / 'in'
    (src / 'sub').mkdir(parents=True)
    imgs = {'cat.jpg': 0, 'cat.png': 1, 'dog.bmp': 2, osp.join('sub', 'cat.png'): 3}
    for name, seed in imgs.items():
        write_image(src / name, seed)
    out, masks = tmp_path / 'out', tmp_path / 'masks'
    code, stdout, err = run([str(src), CONFIG, '--recursive', '--vocabulary', 'cat,dog',
                             '--out-dir', str(out), '--out-mask', str(masks)], capsys)
    assert code == 0, err
    assert 'wrote 4 overlays' in stdout
    expect = ['cat.jpg.png', 'cat.png.png', 'dog.png', osp.join('sub', 'cat.png')]
    for name in expect:
        assert (out / name).is_file() and (masks / name).is_file(), name
    written = sorted(str(p.relative_to(out)) for p in out.rglob('*.png'))
    assert written == sorted(expect)
    # each overlay is of its own image (the two cats differ)
    a, b = cv2.imread(str(out / 'cat.jpg.png')), cv2.imread(str(out / 'cat.png.png'))
    assert a.shape == b.shape and (a != b).any()


FPN = osp.join(ROOT, 'configs/quickstart/fpn_clip-synth-rn_1xb8-1k_synthetic-flat-128x128.py')


def test_fixed_class_config_without_checkpoint(tmp_path, capsys):
    """Used to be ``KeyError: 'classes'``: the names come from the config's
    dataset; a config that names none gets a clear message."""
    img = tmp_path / 'a.png'
    write_image(img)
    code, stdout, err = run([str(img), FPN, '--out-file', str(tmp_path / 'o.png')],
                            capsys, tiny=False)
    assert code == 0, err
    assert (tmp_path / 'o.png').is_file()
    code, _, err = run([str(img), FPN, '--out-file', str(tmp_path / 'x.png'),
                        '--cfg-options', 'test_dataloader.dataset.type=BaseSegDataset'],
                       capsys, tiny=False)
    assert code == 2 and 'names no classes' in err and 'checkpoint' in err
    assert not (tmp_path / 'x.png').exists()


@pytest.fixture(scope='module')
def fpn_checkpoints(tmp_path_factory):
    import torch

    from clipdense.apis import init_model
    d = tmp_path_factory.mktemp('ck')
    out = {}
    for n in (13, 5):
        m = init_model(FPN, cfg_options={'model.decode_head.num_classes': n})
        out[n] = str(d / f'c{n}.pth')
        torch.save({'state_dict': m.state_dict(), 'meta': {}}, out[n])
    data = open(out[13], 'rb').read()
    out['cut'] = str(d / 'cut.pth')
    open(out['cut'], 'wb').write(data[:len(data) // 2])

    class Evil:
        def __reduce__(self):
            return (print, ('pwned', ))
    out['evil'] = str(d / 'evil.pth')
    torch.save({'state_dict': {}, 'x': Evil()}, out['evil'])
    return out


def test_bad_checkpoints(tmp_path, capsys, fpn_checkpoints):
    img = tmp_path / 'a.png'
    write_image(img)
    o = str(tmp_path / 'o.png')
    code, _, err = run([str(img), FPN, fpn_checkpoints['cut'], '--out-file', o],
                       capsys, tiny=False)
    assert code == 2 and 'truncated' in err and fpn_checkpoints['cut'] in err
    code, _, err = run([str(img), FPN, fpn_checkpoints[5], '--out-file', o],
                       capsys, tiny=False)
    assert code == 2 and 'does not fit the model' in err
    assert 'decode_head.conv_seg.weight' in err and '--allow-partial-load' in err
    assert not osp.exists(o)
    code, _, err = run([str(img), FPN, fpn_checkpoints[5], '--out-file', o,
                        '--allow-partial-load'], capsys, tiny=False)
    assert code == 0, err
    code, _, err = run([str(img), FPN, fpn_checkpoints[13], '--out-file', o],
                       capsys, tiny=False)
    assert code == 0, err
    # a pickled checkpoint: refused with a flag the demo has
    code, out, err = run([str(img), FPN, fpn_checkpoints['evil'], '--out-file', o],
                         capsys, tiny=False)
    assert code == 2 and 'error: Refusing to load' in err and 'demo/image_demo.py' in err
    assert 'UnsafeCheckpointError' not in err and 'pwned' not in out + err
    assert '--trust-checkpoint' in demo.parse_args().format_help()


def test_cfg_options_typo(tmp_path, capsys):
    img = tmp_path / 'a.png'
    write_image(img)
    code, _, err = run([str(img), CONFIG, '--out-file', str(tmp_path / 'o.png'),
                        '--cfg-options', *TINY, 'model.test_cfg.labels_onyl=True'],
                       capsys, tiny=False)
    assert code == 2 and 'did you mean model.test_cfg.labels_only?' in err


def test_exif_orientation_overlay_is_upright(tmp_path, capsys):
    from PIL import Image
    rgb = np.zeros((40, 64, 3), np.uint8)
    rgb[:8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / 'side.jpg'
    Image.fromarray(rgb).save(str(path), exif=exif.tobytes())
    out = tmp_path / 'o.png'
    code, _, err = run([str(path), CONFIG, '--out-file', str(out)], capsys)
    assert code == 0, err
    assert cv2.imread(str(out)).shape == (64, 40, 3)  # portrait, as displayed


def test_pixel_limit_read_from_the_header(tmp_path, capsys, monkeypatch):
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    huge = tmp_path / 'huge.png'
    huge.write_bytes(b'\x89PNG\r\n\x1a\n'
                     + chunk(b'IHDR', struct.pack('>IIBBBBB', 20000, 20000, 8, 2, 0, 0, 0))
                     + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b''))
    from clipdense.apis import inference as api
    from clipdense.fileio import image as image_io

    def no_decoding(p):
        raise AssertionError('decoded before the header check')
    monkeypatch.setattr(image_io, 'decode_image_file', no_decoding)
    code, _, err = run([str(huge), CONFIG, '--out-file', str(tmp_path / 'o.png')], capsys)
    assert code == 2
    assert '20000x20000 (400.0 megapixels' in err and '--max-megapixels' in err
    # in a folder: that image is skipped with the message, the others written
    d = tmp_path / 'dir'
    d.mkdir()
    (d / 'huge.png').write_bytes(huge.read_bytes())
    monkeypatch.undo()
    write_image(d / 'ok.png')
    code, stdout, err = run([str(d), CONFIG, '--out-dir', str(tmp_path / 'out')], capsys)
    assert code == 1 and 'skipped' in err and '--max-megapixels' in err
    assert 'wrote 1 overlays' in stdout
