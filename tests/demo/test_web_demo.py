"""demo/web_demo.py without a browser: the page's functions (segmentation,
anomaly, affordance), their messages for bad input, the automatic
labels-only path for long vocabularies, and the model list. The models are
the demo's defaults on a random tiny CLIP (conftest.quickstart_dir)."""
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IMAGE = osp.join(ROOT, 'demo', 'demo.png')
VOCAB = 'under the sky, on the grass|on a lawn, a ball'


def load_web_demo():
    spec = importlib.util.spec_from_file_location(
        'web_demo', osp.join(ROOT, 'demo', 'web_demo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


wd = load_web_demo()


def make(argv=()):
    return wd.WebDemo(wd.parse_args().parse_args(list(argv)))


@pytest.fixture(scope='module')
def in_quickstart(quickstart_dir):
    """Run from a folder with the (random) tiny CLIP of make quickstart."""
    old = os.getcwd()
    os.chdir(quickstart_dir)
    yield quickstart_dir
    os.chdir(old)


@pytest.fixture(scope='module')
def app(in_quickstart):
    return make()


def image_bgr():
    import cv2
    return cv2.imread(IMAGE, cv2.IMREAD_COLOR)


def is_error(msg):
    return msg.startswith('**Error:**')


def test_model_choices():
    choices = wd.model_choices(wd.parse_args().parse_args([]))
    seg = list(choices['semseg'].values())
    assert wd._rel(seg[0].config) == wd.DEFAULT_SEG
    assert wd._rel(list(choices['anomaly'].values())[0].config) == wd.DEFAULT_ANOMALY
    assert wd._rel(list(choices['affordance'].values())[0].config) == wd.DEFAULT_AFFORDANCE
    from clipdense.utils.metafiles import all_models
    meta = {m['Config']: m for m in all_models()}
    for task in ('semseg', 'anomaly'):
        for c in choices[task].values():
            m = meta[wd._rel(c.config)]
            assert m['Training-free'] and m['Task'] == task
    # every training-free segmentation config is offered
    assert {wd._rel(c.config) for c in seg} == {
        k for k, m in meta.items() if m['Training-free'] and m['Task'] == 'semseg'}
    assert len(seg) >= 8


def test_segment(app):
    overlay, legend, heat, msg = app.segment(IMAGE, VOCAB)
    assert not is_error(msg), msg
    img = image_bgr()
    assert overlay.shape == img.shape and overlay.dtype == np.uint8
    assert np.abs(overlay.astype(int) - img[..., ::-1]).mean() > 5
    for name in ('under the sky', 'on the grass|on a lawn', 'a ball'):
        assert f'data-class="{name}"' in legend
    assert heat is None and '3 classes' in msg and 'labels only' not in msg

    overlay2, legend2, heat, msg = app.segment(IMAGE, VOCAB, None, 'on a lawn')
    assert not is_error(msg), msg
    assert heat.shape == img.shape and legend2 == legend
    assert np.array_equal(overlay2, overlay)


@pytest.mark.parametrize('image,vocab,heat,expect', [
    (None, VOCAB, None, 'no image'),
    ('', VOCAB, None, 'no image'),
    ('TEXT', VOCAB, None, 'cannot read the uploaded file'),
    ('MISSING', VOCAB, None, 'not found'),
    (IMAGE, '', None, 'vocabulary is empty'),
    (IMAGE, ' , | ,', None, 'vocabulary is empty'),
    (IMAGE, 'cat,,dog', None, 'empty name'),
    (IMAGE, 'cat, Cat', None, 'repeats'),
    (IMAGE, 'cat, ' + 'very ' * 80 + 'long name', None, 'does not fit the model'),
    (IMAGE, VOCAB, 'a dog', 'not in the vocabulary'),
])
def test_segment_bad_input(app, tmp_path, image, vocab, heat, expect):
    if image == 'TEXT':
        image = str(tmp_path / 'photo.png')
        open(image, 'w').write('this is not an image')
    elif image == 'MISSING':
        image = str(tmp_path / 'gone.png')
    overlay, legend, heat_img, msg = app.segment(image, vocab, None, heat)
    assert is_error(msg) and expect in msg, msg
    assert overlay is None and heat_img is None
    assert 'Traceback' not in msg


def test_too_many_classes(in_quickstart):
    msg = make(['--max-classes', '2']).segment(IMAGE, VOCAB)[-1]
    assert is_error(msg) and 'too long: 3 classes' in msg and '--max-classes' in msg


def test_long_vocabulary_is_labels_only(app):
    from clipdense.apis.inference import LABELS_ONLY_MIN_CLASSES
    names = ['under the sky', 'on the grass', 'a ball'] + [
        f'thing number {i}' for i in range(LABELS_ONLY_MIN_CLASSES)]
    vocab = ', '.join(names)
    _, legend, heat, msg = app.segment(IMAGE, vocab)
    assert not is_error(msg), msg
    assert 'labels only' in msg and heat is None
    # a heat map needs the class scores: the full path, the same labels
    _, legend_full, heat, msg = app.segment(IMAGE, vocab, None, 'a ball')
    assert not is_error(msg), msg
    assert 'labels only' not in msg and heat is not None
    assert legend_full == legend


def test_needs_checkpoint(in_quickstart):
    trained = 'configs/denseclip/denseclip_clip-synth-rn_1xb8-400_synthetic-flat-128x128.py'
    app = make(['--config', trained])
    label = next(iter(app.choices['semseg']))
    assert app.choices['semseg'][label].needs_checkpoint
    msg = app.segment(IMAGE, VOCAB, label)[-1]
    assert is_error(msg) and 'needs a checkpoint' in msg and '--checkpoint' in msg
    # the affordance config (trained head) as --config: same message
    app = make(['--config', wd.DEFAULT_AFFORDANCE])
    label = next(iter(app.choices['affordance']))
    msg = app.affordance(IMAGE, 'hold', label)[-1]
    assert is_error(msg) and 'needs a checkpoint' in msg


def test_missing_quickstart_weights(tmp_path):
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        msg = make().segment(IMAGE, VOCAB)[-1]
    finally:
        os.chdir(old)
    assert is_error(msg) and 'make quickstart' in msg, msg


def test_anomaly(app):
    picture, msg = app.anomaly(IMAGE, 'ball')
    assert not is_error(msg), msg
    h, w = image_bgr().shape[:2]
    assert picture.shape == (h, 2 * w, 3) and 'anomaly score' in msg
    picture, msg = app.anomaly(IMAGE, '  ')
    assert picture is None and is_error(msg) and 'no object name' in msg
    assert 'no image' in app.anomaly(None, 'ball')[-1]


def test_affordance(app):
    label = next(iter(app.choices['affordance']))
    assert 'clip_value' in label  # no checkpoint: the untrained CLIP baseline
    panel, msg = app.affordance(IMAGE, 'hold; drink with')
    assert not is_error(msg), msg
    h, w = image_bgr().shape[:2]
    assert panel.shape == (h, 3 * w, 3) and 'drink with' in msg
    panel, msg = app.affordance(IMAGE, '')
    assert panel is None and is_error(msg) and 'no action' in msg
    assert 'repeats' in app.affordance(IMAGE, 'hold; hold')[-1]


def test_build_ui(app):
    import gradio as gr  # a runtime requirement
    page = wd.build_ui(app)
    assert isinstance(page, gr.Blocks)


def test_bad_command_line(tmp_path):
    with pytest.raises(SystemExit, match='config file not found'):
        wd.main(['--config', str(tmp_path / 'nope.py')])
    with pytest.raises(SystemExit, match='opacity'):
        wd.main(['--opacity', '2'])
