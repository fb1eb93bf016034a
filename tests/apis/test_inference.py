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
    assert model.dataset_meta['classes'][0] == 'a ball'
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


def test_demo_script_bad_input(tmp_path, image, capsys):
    """In process (the CLI itself is run by test_demo_script); more cases in
    tests/apis/test_image_demo.py."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('image_demo',
                                                  osp.join(ROOT, 'demo/image_demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    opts = ['--cfg-options'] + [f'{k}={v}' for k, v in TINY_RN.items()]
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'\x00\x01 not a jpeg')
    out = str(tmp_path / 'o.png')
    assert demo.main([str(bad), CONFIG, '--out-file', out] + opts) == 2
    assert 'is not an image' in capsys.readouterr().err
    assert demo.main([image, CONFIG, '--vocabulary', ' , ', '--out-file', out] + opts) == 2
    assert 'vocabulary is empty' in capsys.readouterr().err
    assert demo.main([image, CONFIG, '--vocabulary', 'cat,dog,cat',
                      '--out-file', out] + opts) == 2
    assert 'repeats' in capsys.readouterr().err
    assert not osp.exists(out)


# ---------------------------------------------------------------------------
# the open-vocabulary protocol, context length, huge images
def _dummy_ov_head():
    """A non-MaskCLIP open-vocabulary head: class k scores k at every pixel."""
    import torch
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead

    from clipdense.registry import MODELS

    if 'TestOVHead' in MODELS.module_dict:
        return

    @MODELS.register_module()
    class TestOVHead(BaseDecodeHead):
        def __init__(self, vocabulary, **kw):
            super().__init__(in_channels=8, channels=8, num_classes=len(vocabulary), **kw)
            self.vocabulary = tuple(vocabulary)
            self.calls = 0

        def set_vocabulary(self, names):
            self.vocabulary = tuple(names)
            self.num_classes = self.out_channels = len(names)
            self.calls += 1

        def forward(self, inputs):
            x = inputs[0]
            k = len(self.vocabulary)
            return torch.arange(k, dtype=x.dtype).view(1, k, 1, 1).expand(
                x.shape[0], k, *x.shape[-2:]).contiguous()


def test_protocol_other_open_vocabulary_head(image):
    _dummy_ov_head()
    from clipdense.apis import inference_model, init_model
    opts = dict(TINY_RN, **{'model.decode_head': dict(
        _delete_=True, type='TestOVHead', vocabulary=['x', 'y'])})
    model = init_model(CONFIG, cfg_options=opts)
    assert model.dataset_meta['classes'] == ('x', 'y')
    res = inference_model(model, image, vocabulary=['a', 'b', 'c'])
    assert res.seg_logits.data.shape[0] == 3
    assert int(res.pred_sem_seg.data.max()) == 2  # the last class scores highest
    assert model.decode_head.calls == 1 and model.num_classes == 3
    assert model.dataset_meta['classes'] == ('a', 'b', 'c')


def test_protocol_model_level_and_fixed_class_model(image):
    from clipdense.apis import inference_model, init_model
    from clipdense.apis.inference import vocabulary_module
    model = init_model(CONFIG, cfg_options=TINY_RN)
    assert vocabulary_module(model) is model.decode_head
    seen = []
    model.vocabulary = ('p', )
    model.set_vocabulary = lambda names: (seen.append(list(names)),
                                          model.decode_head.set_vocabulary(names),
                                          setattr(model, 'vocabulary', tuple(names)))
    assert vocabulary_module(model) is model  # the segmentor itself comes first
    inference_model(model, image, vocabulary=['cup', 'sky'])
    assert seen == [['cup', 'sky']] and model.dataset_meta['classes'] == ('cup', 'sky')
    fixed = init_model(CONFIG, cfg_options=dict(TINY_RN, **{'model.decode_head': dict(
        _delete_=True, type='FCNHead', in_channels=128, channels=8, num_convs=1,
        num_classes=3, in_index=0)}))
    with pytest.raises(TypeError, match='no open-vocabulary module'):
        inference_model(fixed, image, vocabulary=['a', 'b'])


def test_class_name_longer_than_context(image):
    from clipdense.apis import inference_model, init_model
    model = init_model(CONFIG, cfg_options=TINY_RN)
    calls = []
    enc = model.decode_head.text_encoder
    orig = enc._encode_prompts
    enc._encode_prompts = lambda p, c: (calls.append(1), orig(p, c))[1]
    long_name = ' '.join(['striped'] * 80)
    with pytest.raises(ValueError, match='more than the text context of 77 tokens'):
        inference_model(model, image, vocabulary=['cup', long_name])
    with pytest.raises(ValueError, match='class #1'):
        inference_model(model, image, vocabulary=['cup', f'sofa, {long_name}'])
    assert calls == []  # refused before the text tower ran
    assert model.dataset_meta['classes'][0] == 'a ball'  # unchanged
    with pytest.raises(ValueError, match='text context'):  # at build time too
        init_model(CONFIG, cfg_options=dict(TINY_RN, **{
            'model.decode_head.vocabulary': ['cup', long_name],
            'model.decode_head.num_classes': 2}))
    # a name that fits but whose prompts do not only warns (prompts are cut)
    fits = ' '.join(['striped'] * 72)
    with pytest.warns(UserWarning, match='truncated'):
        res = inference_model(model, image, vocabulary=['cup', fits])
    assert res.seg_logits.data.shape[0] == 2


def test_synonyms_average(image):
    import torch
    from clipdense.apis import inference_model, init_model
    model = init_model(CONFIG, cfg_options=TINY_RN)
    res = inference_model(model, image, vocabulary=['sofa, couch', 'cat'])
    assert res.seg_logits.data.shape[0] == 2
    enc = model.decode_head.text_encoder
    both = enc(['sofa, couch'])[0]
    sofa, couch = enc(['sofa'])[0], enc(['couch'])[0]
    assert not torch.allclose(both, sofa) and not torch.allclose(both, couch)
    with pytest.raises(ValueError, match='repeats'):
        inference_model(model, image, vocabulary=['Sofa', 'sofa'])


def test_huge_image_slides_with_bounded_input(image):
    import torch
    from clipdense.apis import inference_model, init_model
    model = init_model(CONFIG, cfg_options=TINY_RN)
    sizes = []
    hook = model.backbone.register_forward_hook(
        lambda m, inp, out: sizes.append(tuple(inp[0].shape[-2:])))
    big = np.tile(cv2.imread(image), (4, 5, 1))  # 256 x 320
    res = inference_model(model, big, whole_max_pixels=128 * 128)
    assert res.pred_sem_seg.data.shape == (1, 256, 320)
    assert len(sizes) > 1 and max(max(s) for s in sizes) <= 128  # crop_size windows
    assert model.test_cfg['mode'] == 'whole'  # restored
    sizes.clear()
    whole = inference_model(model, big, whole_max_pixels=None)
    assert sizes == [(512, 640)]  # one whole input: the config doubles the image
    assert whole.seg_logits.data.shape == res.seg_logits.data.shape
    hook.remove()
    with pytest.raises(ValueError, match='megapixels'):
        inference_model(model, big, max_pixels=200 * 200)
    assert torch.isfinite(res.seg_logits.data).all()


def test_load_image_more_formats(tmp_path, image):
    from clipdense.fileio import load_image
    bgr = cv2.imread(image)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    ga = np.stack([gray, np.full_like(gray, 255)], axis=2)
    assert (load_image(ga)[..., 0] == gray).all()
    g16 = str(tmp_path / 'g16.png')
    cv2.imwrite(g16, gray.astype(np.uint16) * 257)
    assert (load_image(g16)[..., 1] == gray).all()
    assert (load_image(bgr.astype(np.float32) / 255.0) == bgr).all()
    with pytest.raises(ValueError, match=r'expected an \(H, W, 3\) image'):
        load_image(np.zeros((0, 4, 3), np.uint8))
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='is not an image'):
        load_image(str(empty))


def test_init_model_loads_a_training_checkpoint(tmp_path):
    """A checkpoint as tools/train.py writes it (message hub with
    HistoryBuffer statistics) loads through init_model in a fresh process,
    i.e. without anyone having called register_all_modules first."""
    import torch
    from mmengine.logging import HistoryBuffer

    from clipdense.apis import init_model
    model = init_model(CONFIG, cfg_options=TINY_RN)
    buf = HistoryBuffer()
    buf.update(1.0)
    ckpt = tmp_path / 'iter_1.pth'
    torch.save({'meta': {'iter': 1}, 'state_dict': model.state_dict(),
                'message_hub': {'log_scalars': {'loss': buf},
                                'statistics': getattr(HistoryBuffer, 'mean')}},
               ckpt)
    code = ('from clipdense.testing import register_tiny_models; '
            'register_tiny_models(); '
            'from clipdense.apis import init_model; '
            f'init_model({CONFIG!r}, {str(ckpt)!r}, cfg_options={TINY_RN!r}); '
            'print("loaded")')
    proc = run_tool([PY, '-c', code])
    assert 'loaded' in proc.stdout
