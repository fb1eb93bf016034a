"""The contrastive CLIP trainer: it learns, and its weights export to
open_clip's key space."""
import json

import open_clip
import pytest
import torch

from clipdense.registry import DATASETS, MODELS


@pytest.fixture(scope='module')
def caption_world(tmp_path_factory):
    from clipdense.datasets.synthetic import generate_world
    out = tmp_path_factory.mktemp('capworld') / 'w'
    return generate_world(str(out), seed=1, size=64, clip_size=64,
                          parts=('captions', ), num_clip_train=16,
                          num_clip_val=4, progress=False)


def build_model(**kwargs):
    return MODELS.build(
        dict(type='ContrastiveCLIP', model_name='clipdense-synth-rn', **kwargs,
             data_preprocessor=dict(type='ImgDataPreprocessor',
                                    mean=[123.0] * 3, std=[58.0] * 3,
                                    bgr_to_rgb=True)))


@pytest.mark.parametrize('autocast,channels_last', [(None, False),
                                                    ('bfloat16', True)])
def test_caption_dataset_and_loss_falls(caption_world, autocast,
                                        channels_last):
    ds = DATASETS.build(
        dict(type='CaptionDataset', data_root=caption_world['root'],
             ann_file=caption_world['captions']['clip_train'],
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='Resize', scale=(64, 64), keep_ratio=False),
                       dict(type='PackCaptionInputs')]))
    assert len(ds) == 16
    from mmengine.dataset import pseudo_collate
    batch = pseudo_collate([ds[i] for i in range(8)])
    # train below the arch's 128 px
    model = build_model(image_size=64, autocast_dtype=autocast,
                        channels_last=channels_last)
    data = model.data_preprocessor(batch, training=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = model(**data, mode='loss')['loss_contrastive']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # 8 distinct captions: chance is log(8) = 2.08; memorising one batch
    # must bring the loss well below it
    assert losses[0] > 1.5
    assert losses[-1] < 0.5 * losses[0]


def test_export_matches_open_clip(tmp_path):
    from clipdense.models.pretraining import export_open_clip_state_dict
    model = build_model().eval()
    state = export_open_clip_state_dict({'state_dict': model.state_dict()})
    ref = open_clip.create_model('clipdense-synth-rn', pretrained=None).eval()
    ref.load_state_dict(state)  # strict: same key space
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(ref.encode_image(x),
                                   model.clip.encode_image(x))
    with pytest.raises(KeyError, match='ContrastiveCLIP'):
        export_open_clip_state_dict({'state_dict': {'x.w': torch.ones(1)}})


def test_caption_dataset_bad_file(tmp_path):
    bad = tmp_path / 'c.jsonl'
    bad.write_text(json.dumps({'img': 'a.png'}) + '\n')
    with pytest.raises(ValueError, match='"image" and "caption"'):
        DATASETS.build(dict(type='CaptionDataset', ann_file=str(bad),
                            data_root=str(tmp_path), pipeline=[]))


def test_autocast_dtype_is_checked():
    with pytest.raises(ValueError, match='autocast_dtype'):
        build_model(autocast_dtype='int8')
