"""demo/image_demo.py in process: folders with a progress bar, heat maps,
synonyms, bad inputs, and that the written overlay/mask carry the right
names where the model is right."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from clipdense.testing import register_tiny_models
from clipdense.testing.runs import ROOT, make_tiny_world

register_tiny_models()

CONFIG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')
TINY = ['model.backbone.arch=clipdense-tiny-rn', 'model.backbone.pretrained=None',
        'model.decode_head.text_encoder.arch=clipdense-tiny-rn',
        'model.decode_head.text_encoder.pretrained=None']


def load_demo():
    spec = importlib.util.spec_from_file_location('image_demo',
                                                  osp.join(ROOT, 'demo/image_demo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


demo = load_demo()


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp('world'))['root']


@pytest.fixture(scope='module')
def folder(world, tmp_path_factory):
    """A folder with 2 colour PNGs, a grayscale, an RGBA and a 16-bit image,
    a text file and a broken 'image'."""
    d = tmp_path_factory.mktemp('imgs')
    src = osp.join(world, 'flat/img_dir/val')
    a = cv2.imread(osp.join(src, 'flat_val_00000.png'))
    b = cv2.imread(osp.join(src, 'flat_val_00001.png'))
    cv2.imwrite(str(d / 'a.png'), a)
    cv2.imwrite(str(d / 'b.jpg'), b)
    cv2.imwrite(str(d / 'gray.png'), cv2.cvtColor(a, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(d / 'rgba.png'), np.concatenate([b, np.full(b.shape[:2] + (1, ), 200,
                                                                 np.uint8)], 2))
    cv2.imwrite(str(d / 'deep16.png'), a.astype(np.uint16) * 257)
    (d / 'notes.txt').write_text('not an image')
    (d / 'broken.png').write_bytes(b'\x89PNG but not really')
    return str(d)


def run(args, capsys):
    code = demo.main(args + ['--cfg-options', *TINY])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_vocabulary_syntax():
    assert demo.parse_vocabulary_arg('sofa|couch, cat ,grass') == \
        ['sofa, couch', 'cat', 'grass']
    assert demo.display_name('sofa, couch') == 'sofa|couch'
    for bad, msg in [('', 'empty'), (' , ', 'empty'), ('cat,,dog', 'empty name'),
                     ('sofa||couch', 'empty name'), ('cat|', 'empty name'),
                     ('cat,Cat', 'repeats'), ('sofa|couch,couch', 'repeats'),
                     ('a|b,c|A', 'repeats')]:
        with pytest.raises(ValueError, match=msg):
            demo.parse_vocabulary_arg(bad)


def test_vocabulary_file(tmp_path):
    f = tmp_path / 'v.txt'
    f.write_text('# my classes\nsofa | couch\n\ncat  # pets\n')
    assert demo.read_vocabulary_file(str(f)) == ['sofa, couch', 'cat']
    f.write_text('# nothing\n\n')
    with pytest.raises(ValueError, match='is empty'):
        demo.read_vocabulary_file(str(f))
    with pytest.raises(ValueError, match='not found'):
        demo.read_vocabulary_file(str(tmp_path / 'missing.txt'))


def test_folder_progress_heatmaps_masks(folder, tmp_path, capsys):
    out = tmp_path / 'out'
    masks = tmp_path / 'masks'
    code, stdout, stderr = run([folder, CONFIG, '--vocabulary', 'ball|sphere,cup,sky,grass',
                                '--out-dir', str(out), '--out-mask', str(masks),
                                '--heatmaps', 'all'], capsys)
    assert code == 1  # the broken file is skipped and reported
    assert 'skipped' in stderr and 'broken.png' in stderr and 'is not an image' in stderr
    assert 'segmenting' in stderr  # the tqdm bar, on stderr
    assert 'wrote 5 overlays' in stdout and '1 images skipped' in stdout
    for name in ('a', 'b', 'gray', 'rgba', 'deep16'):
        o = cv2.imread(str(out / f'{name}.png'))
        assert o is not None and o.shape == (64, 64, 3)
        m = cv2.imread(str(masks / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert m.shape == (64, 64) and m.max() <= 3
        heat = sorted(p.name for p in (out / f'{name}_heatmaps').iterdir())
        assert heat == ['0_ball_sphere.png', '1_cup.png', '2_sky.png', '3_grass.png']
    assert not (out / 'notes.png').exists()


def test_heatmaps_present_match_prediction(folder, tmp_path, capsys):
    img = osp.join(folder, 'a.png')
    out = str(tmp_path / 'o.png')
    mask = str(tmp_path / 'm.png')
    code, stdout, _ = run([img, CONFIG, '--vocabulary', 'ball,cup,sky,grass,road',
                           '--out-file', out, '--out-mask', mask, '--heatmaps'], capsys)
    assert code == 0 and 'classes present' in stdout
    m = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    names = ['ball', 'cup', 'sky', 'grass', 'road']
    files = sorted(p.name for p in (tmp_path / 'o_heatmaps').iterdir())
    assert files == [f'{k}_{names[k]}.png' for k in np.unique(m)]


@pytest.mark.parametrize('args,msg', [
    (['--vocabulary', ' , '], 'vocabulary is empty'),
    (['--vocabulary', 'cat,dog,cat'], 'repeats'),
    (['--vocabulary', 'cat', '--vocabulary-file', 'x.txt'], 'not both'),
    (['--opacity', '2'], 'opacity'),
    (['--max-megapixels', '0'], 'max-megapixels'),
])
def test_bad_arguments(folder, tmp_path, capsys, args, msg):
    out = tmp_path / 'o.png'
    code, _, err = run([osp.join(folder, 'a.png'), CONFIG, '--out-file', str(out)] + args,
                       capsys)
    assert code == 2 and msg in err and not out.exists()


def test_bad_inputs(folder, tmp_path, capsys):
    code, _, err = run([folder, CONFIG], capsys)
    assert code == 2 and 'give --out-dir' in err
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('x')
    code, _, err = run([str(empty), CONFIG, '--out-dir', str(tmp_path / 'o')], capsys)
    assert code == 2 and 'no images' in err
    code, _, err = run([osp.join(folder, 'notes.txt'), CONFIG], capsys)
    assert code == 2 and 'is not an image' in err
    code, _, err = run([str(tmp_path / 'missing.png'), CONFIG], capsys)
    assert code == 2 and 'image not found' in err
    long_name = ' '.join(['striped'] * 80)
    code, _, err = run([osp.join(folder, 'a.png'), CONFIG, '--vocabulary',
                        f'cat,{long_name}', '--out-file', str(tmp_path / 'l.png')], capsys)
    assert code == 2 and 'text context of 77 tokens' in err
    big = tmp_path / 'big.png'
    cv2.imwrite(str(big), np.zeros((1200, 1000, 3), np.uint8))
    code, _, err = run([str(big), CONFIG, '--max-megapixels', '1',
                        '--out-file', str(tmp_path / 'b.png')], capsys)
    assert code == 2 and 'megapixels' in err and not (tmp_path / 'b.png').exists()


def test_demo_output_carries_the_right_names(tmp_path, capsys, monkeypatch):
    """Pixel accuracy of the demo's written mask and overlay when the model
    knows the classes: four flat-colour quadrants, and 'text' embeddings set
    to each quadrant's mean dense feature (a stand-in for a CLIP whose text
    matches the image; the tiny CLIP's own accuracy is measured by
    tools/analysis_tools/bench_maskclip.py). Checks that the names the demo
    writes (order, palette, legend, resizing) are the ones predicted."""
    colours = {'sky': (235, 206, 135), 'grass': (34, 139, 34), 'road': (96, 96, 96),
               'ball': (60, 20, 220)}
    img = np.zeros((256, 256, 3), np.uint8)
    gt = np.zeros((256, 256), np.int64)
    for i, (y, x) in enumerate([(0, 0), (0, 128), (128, 0), (128, 128)]):
        img[y:y + 128, x:x + 128] = list(colours.values())[i]
        gt[y:y + 128, x:x + 128] = i
    path = str(tmp_path / 'quad.png')
    cv2.imwrite(path, img)
    build = demo.build_model

    def build_with_prototypes(args):
        model = build(args)
        x = model.data_preprocessor(dict(inputs=[torch.from_numpy(img).permute(2, 0, 1)]),
                                    False)['inputs']
        with torch.no_grad():
            value = model.backbone(x)[-1]['value'][0]  # (D, 8, 8)
        cells = cv2.resize(gt.astype(np.uint8), value.shape[-2:][::-1],
                           interpolation=cv2.INTER_NEAREST)
        protos = {name: torch.nn.functional.normalize(
            value[:, torch.from_numpy(cells == i)].mean(1), dim=0)
            for i, name in enumerate(colours)}
        enc = model.decode_head.text_encoder
        monkeypatch.setattr(enc, 'encode_names', lambda names, synonyms, templates=None:
                            torch.stack([protos[n] for n in names]))
        return model

    monkeypatch.setattr(demo, 'build_model', build_with_prototypes)
    out, mask = str(tmp_path / 'o.png'), str(tmp_path / 'm.png')
    vocab = ['road', 'ball', 'sky', 'grass']  # not the quadrant order
    code, stdout, _ = run([path, CONFIG, '--vocabulary', ','.join(vocab),
                           '--out-file', out, '--out-mask', mask, '--opacity', '1'], capsys)
    assert code == 0
    m = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    names = np.array(vocab)[m]
    truth = np.array(list(colours))[gt]
    acc = (names == truth).mean()
    assert acc > 0.8, acc
    for n in vocab:
        assert n in stdout  # legend / report name every class present
    # with opacity 1 the overlay colour (outside the legend) is the palette
    # colour of the name at that pixel
    from clipdense.apis.inference import make_palette
    pal = np.array(make_palette(4))[:, ::-1]
    o = cv2.imread(out)
    region = (slice(200, 256), slice(0, 256))
    assert (o[region] == pal[m[region]]).all()


QUICKSTART_CLIP = osp.join(ROOT, 'work_dirs/quickstart/tiny_clip.pt')
WORLD = osp.join(ROOT, 'data/synthetic')


NEEDS_QUICKSTART = pytest.mark.skipif(
    not (osp.isfile(QUICKSTART_CLIP) and osp.isdir(WORLD)),
    reason='needs the quickstart tiny CLIP and world (make quickstart)')


def copy_val_images(tmp_path, n):
    src = osp.join(WORLD, 'flat/img_dir/val')
    names = sorted(os.listdir(src))[:n]
    d = tmp_path / 'in'
    d.mkdir()
    for name in names:
        (d / name).write_bytes(open(osp.join(src, name), 'rb').read())
    return d, names


def read_gt(name):
    return cv2.imread(osp.join(WORLD, 'flat/ann_dir/val', name), cv2.IMREAD_UNCHANGED)


@NEEDS_QUICKSTART
def test_demo_with_the_quickstart_tiny_clip(tmp_path, capsys):
    """The demo with the synthetic config as shipped (trained tiny CLIP, no
    overrides, all 13 classes) on flat val images: pixel accuracy of the
    written label maps at least twice uniform chance (1/13). With all 13
    names the tiny CLIP a fresh `make quickstart` trains gets 26.0% of all
    labelled pixels and 28.0% of thing pixels on the 50 flat val images
    (results/maskclip_demo.md), 26.0% on the 16 used here."""
    d, names = copy_val_images(tmp_path, 16)
    code = demo.main([str(d), CONFIG, '--out-dir', str(tmp_path / 'out'),
                      '--out-mask', str(tmp_path / 'masks')])
    assert code == 0, capsys.readouterr().err
    hit = total = 0
    for n in names:
        gt = read_gt(n)
        m = cv2.imread(str(tmp_path / 'masks' / n), cv2.IMREAD_UNCHANGED)
        valid = gt != 255
        hit += int((m[valid] == gt[valid]).sum())
        total += int(valid.sum())
    print(f'pixel accuracy of the demo masks: {hit / total:.3f}')
    assert hit / total > 2 / 13, hit / total


@NEEDS_QUICKSTART
def test_demo_names_object_pixels_with_a_user_vocabulary(tmp_path, capsys):
    """Issue 7's demo acceptance, as a user runs the demo: one image at a
    time with ``--vocabulary`` listing what the user looks for, here the
    classes in the image plus two that are not (seeded). The thing pixels
    of the written mask carry the right name far more often than a uniform
    random pick from each image's vocabulary would (14% on these 16 images):
    the tiny CLIP a fresh `make quickstart` trains names 43.5% of them right
    here, 45.8% on the 50 flat val images and 28.0% with all 13 names
    (results/maskclip_demo.md from tools/analysis_tools/demo_accuracy.py).
    The bound, 30% and twice that chance, leaves a margin below 43.5%."""
    import json
    import random

    from mmengine.config import Config
    vocab = list(Config.fromfile(CONFIG).vocabulary)
    n_thing = len(json.load(open(osp.join(WORLD, 'meta.json')))['thing_classes'])
    d, names = copy_val_images(tmp_path, 16)
    rng = random.Random(0)
    hit = total = 0
    chance = 0.0  # expected hits of a uniform pick from the image's vocabulary
    for name in names:
        gt = read_gt(name)
        present = sorted(set(np.unique(gt).tolist()) - {255})
        others = [c for c in range(len(vocab)) if c not in present]
        ids = sorted(present + rng.sample(others, 2))
        chance += float((gt < n_thing).sum()) / len(ids)
        mask = tmp_path / f'{name}.mask.png'
        code = demo.main([str(d / name), CONFIG, '--vocabulary',
                          ','.join(vocab[i] for i in ids),
                          '--out-file', str(tmp_path / f'{name}.overlay.png'),
                          '--out-mask', str(mask)])
        assert code == 0, capsys.readouterr().err
        assert (tmp_path / f'{name}.overlay.png').is_file()
        m = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
        assert m.shape == gt.shape and m.max() < len(ids)
        labels = np.array(ids)[m]  # vocabulary position -> class id
        thing = gt < n_thing
        hit += int((labels[thing] == gt[thing]).sum())
        total += int(thing.sum())
    chance /= total
    print(f"thing-pixel accuracy of the demo masks: {hit / total:.3f} "
          f"(uniform pick from the vocabulary: {chance:.3f})")
    assert hit / total > max(0.3, 2 * chance), (hit / total, chance)
