"""inference_model switches to the labels-only path (no full-size class
scores) for long vocabularies unless the caller wants the scores; the
labels stay the same. demo/image_demo.py keeps the scores for --heatmaps."""
import importlib.util
import os.path as osp

import numpy as np
import pytest

from clipdense.testing import register_tiny_models
from clipdense.testing.runs import ROOT

register_tiny_models()

CONFIG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')
IMAGE = osp.join(ROOT, 'demo', 'demo.png')
TINY_RN = {
    'model.backbone.arch': 'clipdense-tiny-rn',
    'model.backbone.pretrained': None,
    'model.decode_head.text_encoder.arch': 'clipdense-tiny-rn',
    'model.decode_head.text_encoder.pretrained': None,
}


@pytest.fixture(scope='module')
def model():
    from clipdense.apis import init_model
    return init_model(CONFIG, device='cpu', cfg_options=TINY_RN)


def names(n):
    return [f'thing number {i}' for i in range(n)]


def test_init_model_can_switch(model):
    from clipdense.apis.inference import labels_only_supported
    from clipdense.models.segmentors.labels_only import LabelsOnlyMixin
    assert isinstance(model, LabelsOnlyMixin)
    assert labels_only_supported(model)
    assert not model.test_cfg.get('labels_only', False)  # the config is untouched


def test_long_vocabulary_labels_only(model):
    from clipdense.apis import inference_model
    from clipdense.apis.inference import LABELS_ONLY_MIN_CLASSES
    vocab = names(LABELS_ONLY_MIN_CLASSES)
    fast = inference_model(model, IMAGE, vocabulary=vocab)
    assert 'seg_logits' not in fast
    full = inference_model(model, IMAGE, labels_only=False)
    assert full.seg_logits.data.shape[0] == LABELS_ONLY_MIN_CLASSES
    a = fast.pred_sem_seg.data.numpy()
    b = full.pred_sem_seg.data.numpy()
    assert a.shape == b.shape
    assert (a == b).mean() > 0.999
    assert not model.test_cfg.get('labels_only', False)  # restored after the call

    # one class fewer: the default path with scores
    short = inference_model(model, IMAGE, vocabulary=vocab[:-1])
    assert short.seg_logits.data.shape[0] == LABELS_ONLY_MIN_CLASSES - 1
    # forced either way
    assert 'seg_logits' not in inference_model(model, IMAGE, labels_only=True)


def test_sliding_keeps_scores(model):
    from clipdense.apis import inference_model
    from clipdense.apis.inference import LABELS_ONLY_MIN_CLASSES
    inference_model(model, IMAGE, vocabulary=names(LABELS_ONLY_MIN_CLASSES))
    # an image above whole_max_pixels is slid: sliding needs the scores
    res = inference_model(model, IMAGE, whole_max_pixels=32 * 32)
    assert res.seg_logits.data.shape[0] == LABELS_ONLY_MIN_CLASSES
    with pytest.raises(ValueError, match='labels_only=True'):
        inference_model(model, IMAGE, whole_max_pixels=32 * 32, labels_only=True)


def test_unsupported_model_refuses_forced_labels_only():
    from clipdense.apis.inference import choose_labels_only

    class Plain:
        test_cfg = {'mode': 'whole'}
        dataset_meta = {'classes': tuple(names(500))}

    assert choose_labels_only(Plain()) is None  # auto: keep the config
    assert choose_labels_only(Plain(), False) is False
    with pytest.raises(ValueError, match='unsupported model'):
        choose_labels_only(Plain(), True)


def test_image_demo_heatmaps_keep_scores(tmp_path, capsys):
    """A long vocabulary with --heatmaps: the CLI asks for the scores (the
    labels-only path has none and the heat maps would fail)."""
    from clipdense.apis.inference import LABELS_ONLY_MIN_CLASSES
    spec = importlib.util.spec_from_file_location(
        'image_demo', osp.join(ROOT, 'demo', 'image_demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    vocab = ','.join(names(LABELS_ONLY_MIN_CLASSES))
    opts = [f'{k}={"None" if v is None else v}' for k, v in TINY_RN.items()]
    out = tmp_path / 'o.png'
    import torch
    torch.manual_seed(0)  # the same random tiny CLIP for both runs
    code = demo.main([IMAGE, CONFIG, '--vocabulary', vocab, '--out-file', str(out),
                      '--heatmaps', '--cfg-options', *opts])
    assert code == 0, capsys.readouterr().err
    heat_dir = tmp_path / 'o_heatmaps'
    assert out.is_file() and len(list(heat_dir.iterdir())) >= 1
    torch.manual_seed(0)
    code = demo.main([IMAGE, CONFIG, '--vocabulary', vocab, '--out-file',
                      str(tmp_path / 'p.png'), '--cfg-options', *opts])
    assert code == 0, capsys.readouterr().err
    import cv2
    a = cv2.imread(str(out))
    b = cv2.imread(str(tmp_path / 'p.png'))
    assert np.array_equal(a, b)  # the same overlay either way
