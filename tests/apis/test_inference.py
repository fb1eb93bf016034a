"""init_model / inference_model with any vocabulary, and demo/image_demo.py."""
import os.path as osp

import cv2
import numpy as np
import pytest

from clipdense.testing import register_tiny_models
from clipdense.testing.runs import PY, ROOT, make_tiny_world, run_tool

register_tiny_models()

CONFIG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')
TINY_RN = {
    'model.backbone.arch': 'clipdense-tiny-rn',
    'model.backbone.pretrained': None,
    'model.decode_head.text_encoder.arch': 'clipdense-tiny-rn',
    'model.decode_head.text_encoder.pretrained': None,
}
TINY_VIT = {
    'model.backbone': dict(type='OpenCLIPViT', arch='clipdense-tiny-vit16', pretrained=None,
                           pyramid=False, out_indices=(-1, ),
                           joint_outputs=('value', 'keys'), freeze='all'),
    'model.decode_head.text_encoder.arch': 'clipdense-tiny-vit16',
    'model.decode_head.text_encoder.pretrained': None,
    'model.decode_head.ks_thresh': 1.0,
}


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp('world'))['root']


@pytest.fixture(scope='module')
def image(world):
    path = osp.join(world, 'flat/img_dir/val/flat_val_00000.png')
    assert osp.isfile(path)
    return path


@pytest.mark.parametrize('opts', [TINY_RN, TINY_VIT], ids=['rn', 'vit'])
def test_single_and_list(opts, image):
    from mmseg.structures import SegDataSample

    from clipdense.apis import inference_model, init_model
    model = init_model(CONFIG, device='cpu', cfg_options=opts)
    assert model.dataset_meta['classes'][0] == 'ball'
    assert len(model.dataset_meta['classes']) == 13
    res = inference_model(model, image)
    assert isinstance(res, SegDataSample)
    assert res.pred_sem_seg.data.shape == (1, 64, 64)
    assert res.seg_logits.data.shape == (13, 64, 64)
    arr = cv2.imread(image)
    res2 = inference_model(model, [image, arr])
    assert isinstance(res2, list) and len(res2) == 2
    assert (res2[0].pred_sem_seg.data == res.pred_sem_seg.data).all()
    assert (res2[1].pred_sem_seg.data == res.pred_sem_seg.data).all()


def test_vocabulary_change_text_only(image):
    from clipdense.apis import inference_model, init_model
    model = init_model(CONFIG, cfg_options=TINY_RN)
    backbone_id = id(model.backbone)
    calls = []
    enc = model.decode_head.text_encoder
    orig = enc._encode_prompts
    enc._encode_prompts = lambda p, c: (calls.append(list(p)), orig(p, c))[1]
    r1 = inference_model(model, image, vocabulary=['cup', 'grass'])
    assert r1.seg_logits.data.shape[0] == 2
    assert int(r1.pred_sem_seg.data.max()) <= 1
    assert model.dataset_meta['classes'] == ('cup', 'grass')
    assert len(model.dataset_meta['palette']) >= 2
    n = len(calls)
    assert n == 1 and all(('cup' in p or 'grass' in p) for p in calls[0])
    r2 = inference_model(model, image, vocabulary=['sky', 'road', 'ball', 'key'])
    assert r2.seg_logits.data.shape[0] == 4
    assert model.dataset_meta['classes'] == ('sky', 'road', 'ball', 'key')
    assert len(calls) == 2
    inference_model(model, image, vocabulary=['cup', 'grass'])  # cached
    inference_model(model, image)  # same vocabulary, no argument
    assert len(calls) == 2
    assert id(model.backbone) == backbone_id


def test_vocabulary_change_slide_mode(image):
    from clipdense.apis import inference_model, init_model
    opts = dict(TINY_RN, **{'model.test_cfg': dict(mode='slide', crop_size=(48, 48),
                                                    stride=(32, 32))})
    model = init_model(CONFIG, cfg_options=opts)
    res = inference_model(model, image, vocabulary=['cup', 'grass', 'sky'])
    assert res.seg_logits.data.shape == (3, 64, 64)
    assert model.out_channels == model.num_classes == 3


def test_bad_inputs(tmp_path, image):
    from clipdense.apis import inference_model, init_model, load_image
    model = init_model(CONFIG, cfg_options=TINY_RN)
    bad = tmp_path / 'not_an_image.png'
    bad.write_text('hello')
    with pytest.raises(ValueError, match='is not an image'):
        inference_model(model, str(bad))
    with pytest.raises(FileNotFoundError, match='image not found'):
        inference_model(model, str(tmp_path / 'missing.png'))
    with pytest.raises(TypeError, match='not one string'):
        inference_model(model, image, vocabulary='cat,dog')
    with pytest.raises(ValueError, match='repeats'):
        inference_model(model, image, vocabulary=['cat', 'cat'])
    with pytest.raises(ValueError, match='empty'):
        inference_model(model, image, vocabulary=[])
    # grayscale, RGBA and 16-bit images are converted
    bgr = cv2.imread(image)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    rgba = np.concatenate([bgr, np.full(bgr.shape[:2] + (1, ), 255, np.uint8)], 2)
    p16 = str(tmp_path / 'img16.png')
    cv2.imwrite(p16, bgr.astype(np.uint16) * 257)
    assert load_image(gray).shape == bgr.shape
    assert (load_image(rgba) == bgr).all()
    assert (load_image(p16) == bgr).all()
    for img in (gray, rgba, p16):
        assert inference_model(model, img).pred_sem_seg.data.shape == (1, 64, 64)


def test_init_model_errors():
    from clipdense.apis import init_model
    with pytest.raises(FileNotFoundError):
        init_model('no/such/config.py')
    with pytest.raises(ValueError, match='num_classes'):
        init_model(CONFIG, cfg_options=dict(TINY_RN, **{'model.decode_head.num_classes': 3}))


def test_draw_overlay_legend():
    import importlib.util
    spec = importlib.util.spec_from_file_location('image_demo',
                                                  osp.join(ROOT, 'demo/image_demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    img = np.full((128, 128, 3), 100, np.uint8)
    seg = np.zeros((128, 128), np.int64)
    seg[64:, :] = 2
    palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    out, present = demo.draw_overlay(img, seg, ['a', 'b', 'c'], palette, 0.5)
    assert out.shape == img.shape and present == [0, 2]
    # legend swatches of the present classes (BGR) at the top left
    assert out[3, 3].tolist() == [0, 0, 255]
    assert out[-1, -1].tolist() == [178, 50, 50]  # blended blue, no legend there
    assert demo.parse_vocabulary_arg(' cat, dog ') == ['cat', 'dog']
    for bad in ('', ' , ', 'cat,,dog', 'cat,Cat'):
        with pytest.raises(ValueError):
            demo.parse_vocabulary_arg(bad)


def _demo_cmd(*args):
    code = ('import runpy, sys; from clipdense.testing import register_tiny_models; '
            'register_tiny_models(); sys.argv = ["image_demo.py"] + sys.argv[1:]; '
            'runpy.run_path("demo/image_demo.py", run_name="__main__")')
    opts = [f'{k}={v}' for k, v in TINY_RN.items()]
    return [PY, '-c', code, *args, '--cfg-options', *opts]


def test_demo_script(tmp_path, image):
    out = str(tmp_path / 'out.png')
    mask = str(tmp_path / 'mask.png')
    proc = run_tool(_demo_cmd(image, CONFIG, '--vocabulary', 'ball,cup,sky,grass,road',
                              '--out-file', out, '--out-mask', mask, '--device', 'cpu',
                              '--opacity', '0.6'), timeout=300)
    assert 'classes present' in proc.stdout
    written = cv2.imread(out)
    assert written.shape == cv2.imread(image).shape
    m = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    assert m.shape == (64, 64) and m.max() <= 4


def test_demo_script_bad_input(tmp_path, image):
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'\x00\x01 not a jpeg')
    out = str(tmp_path / 'o.png')
    proc = run_tool(_demo_cmd(str(bad), CONFIG, '--out-file', out), check=False)
    assert proc.returncode == 2 and 'is not an image' in proc.stderr
    proc = run_tool(_demo_cmd(image, CONFIG, '--vocabulary', ' , ', '--out-file', out),
                    check=False)
    assert proc.returncode == 2 and 'vocabulary is empty' in proc.stderr
    proc = run_tool(_demo_cmd(image, CONFIG, '--vocabulary', 'cat,dog,cat',
                              '--out-file', out), check=False)
    assert proc.returncode == 2 and 'repeats' in proc.stderr
    assert not osp.exists(out)
