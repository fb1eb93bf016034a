"""The object-token loss of ContrastiveCLIP (issue #25's fifth proxy
candidate): boxes packed and scaled, the dense tokens it reads, and that it
teaches the tokens inside a box their object's noun."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from clipdense.datasets.transforms.formatting import PackCaptionInputs
from clipdense.models.pretraining.contrastive_clip import ContrastiveCLIP


def _img(h=256, w=256):
    return np.zeros((h, w, 3), np.uint8)


def test_pack_with_boxes_scales_to_the_packed_image():
    pack = PackCaptionInputs(with_boxes=True)
    out = pack(dict(img=_img(64, 128), caption='c', objects=['cup', 'ball'],
                    boxes=[[0, 0, 64, 64], [100, 10, 128, 40]],
                    scale_factor=(0.5, 2.0)))
    ds = out['data_samples']
    assert list(ds['objects']) == ['cup', 'ball']
    assert ds['boxes'].tolist() == [[0, 0, 32, 128], [50, 20, 64, 80]]
    # without the flag, nothing but the caption and path
    plain = PackCaptionInputs()(dict(img=_img(), caption='c',
                                     objects=['cup'], boxes=[[0, 0, 1, 1]]))
    assert set(plain['data_samples']) == {'caption', 'img_path'}


def test_pack_with_boxes_collates_per_sample_and_refuses_old_records():
    pack = PackCaptionInputs(with_boxes=True)
    a = pack(dict(img=_img(), caption='a', objects=['cup', 'ball'],
                  boxes=[[0, 0, 8, 8], [8, 8, 16, 16]]))
    b = pack(dict(img=_img(), caption='b'))  # an anomaly or stuff record
    batch = pseudo_collate([a, b])['data_samples']
    assert [len(o) for o in batch['objects']] == [2, 0]
    assert [tuple(x.shape) for x in batch['boxes']] == [(2, 4), (0, 4)]
    with pytest.raises(ValueError, match='regenerate the rich-caption'):
        pack(dict(img=_img(), caption='a', objects=['cup'],
                  img_path='x.png'))


def test_box_weights_average_the_tokens_inside():
    boxes = torch.tensor([[0., 0., 32., 16.], [60., 60., 61., 61.]])
    w = ContrastiveCLIP.box_weights(boxes, (16, 16), (8, 8))
    assert torch.allclose(w.sum(1), torch.ones(2))
    first = w[0].reshape(16, 16)
    # patch centres 4, 12, 20, 28 in x; 4, 12 in y
    assert first[:2, :4].eq(1 / 8).all() and first.sum() == pytest.approx(1)
    assert first[2:].eq(0).all() and first[:, 4:].eq(0).all()
    # a box holding no patch centre takes the token under its centre
    second = w[1].reshape(16, 16)
    assert second[7, 7] == 1


@pytest.fixture(scope='module')
def vit():
    torch.manual_seed(0)
    return ContrastiveCLIP('clipdense-synth-vit8', object_loss_weight=1.0,
                           image_size=64)


def test_tokens_are_the_dense_read_outs(tmp_path):
    from clipdense.models.backbones.openclip_vit import OpenCLIPViT
    torch.manual_seed(0)
    vit = ContrastiveCLIP('clipdense-synth-vit8', object_loss_weight=1.0)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        pooled, value = vit._image_and_tokens(x)
        assert torch.allclose(pooled, vit.clip.encode_image(x), atol=1e-5)
        vit.object_features = 'tokens'
        try:
            _, tokens = vit._image_and_tokens(x)
        finally:
            vit.object_features = 'value'
        v = vit.clip.visual
        v.output_tokens = True
        try:
            _, ref_tokens = v(x)
        finally:
            v.output_tokens = False
        assert torch.allclose(tokens.flatten(1, 2), ref_tokens @ v.proj,
                              atol=1e-5)
        # the value path is the backbone's MaskCLIP read-out
        weights = tmp_path / 'w.pt'
        torch.save(vit.clip.state_dict(), weights)
        backbone = OpenCLIPViT('clipdense-synth-vit8', str(weights),
                               pyramid=False, joint_outputs=('value', ))
        backbone.eval()
        *_, joint = backbone(x)
    assert torch.allclose(value.permute(0, 3, 1, 2), joint['value'],
                          atol=1e-4)


def test_object_loss_teaches_the_tokens_in_the_box(vit):
    torch.manual_seed(1)
    model = ContrastiveCLIP('clipdense-synth-vit8', object_loss_weight=1.0,
                            image_size=64)
    # left half red, right half blue; the nouns follow the halves
    x = torch.zeros(4, 3, 64, 64)
    x[:, 0, :, :32] = 1.0
    x[:, 2, :, 32:] = 1.0
    x[2:] = x[2:].flip(-1)
    left, right = [0., 0., 32., 64.], [32., 0., 64., 64.]
    samples = [dict(caption=f'image {i}', objects=np.array(['cup', 'ball']),
                    boxes=torch.tensor([left, right] if i < 2 else
                                       [right, left])) for i in range(4)]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        out = model(x, samples, mode='loss')
        opt.zero_grad()
        (out['loss_object']).backward()
        opt.step()
        losses.append(out['loss_object'].item())
    # two nouns: chance is log(2) = 0.69
    assert losses[0] > 0.4 and losses[-1] < 0.1
    # the same objects with swapped boxes now cost more than chance
    swapped = [dict(s, boxes=s['boxes'].flip(0)) for s in samples]
    with torch.no_grad():
        wrong = model(x, swapped, mode='loss')['loss_object'].item()
    assert wrong > 0.69


def test_object_loss_off_by_default_and_checked():
    model = ContrastiveCLIP('clipdense-synth-vit8', image_size=64)
    out = model(torch.randn(2, 3, 64, 64), [dict(caption='a'),
                                            dict(caption='b')], mode='loss')
    assert set(out) == {'loss_contrastive', 'logit_scale'}
    with pytest.raises(ValueError, match='VisionTransformer'):
        ContrastiveCLIP('clipdense-synth-rn', object_loss_weight=1.0)
    with pytest.raises(ValueError, match='object_features'):
        ContrastiveCLIP('clipdense-synth-vit8', object_features='keys')
    with pytest.raises(ValueError, match='object_loss_weight'):
        ContrastiveCLIP('clipdense-synth-vit8', object_loss_weight=-1)
    from clipdense.models.pretraining.mask_adapted_clip import MaskPromptCLIP
    with pytest.raises(ValueError, match='mask prompts'):
        MaskPromptCLIP('clipdense-synth-vit8', object_loss_weight=1.0)


def test_object_loss_names_the_missing_field(vit):
    with pytest.raises(KeyError, match=r'with_boxes=True'):
        vit(torch.randn(1, 3, 64, 64), [dict(caption='a')], mode='loss')


def test_mask_weights_are_patch_shares():
    m = torch.zeros(2, 16, 16, dtype=torch.bool)
    m[0, :8, :8] = True  # the top-left token of a 2x2 grid
    m[1, :, 4:12] = True  # half of each token's patch
    w = ContrastiveCLIP.mask_weights(m, (2, 2))
    assert w[0].tolist() == [1, 0, 0, 0]
    assert torch.allclose(w[1], torch.full((4, ), 0.25))
    assert ContrastiveCLIP.mask_weights(torch.zeros(1, 16, 16),
                                        (2, 2)).sum() == 0


def test_label_map_regions_through_the_pipeline(tmp_path):
    """The rich corpus's label maps, loaded, resized with the image and
    packed as one mask per class, drive the loss (stuff included)."""
    from clipdense.datasets.synthetic import spec
    from clipdense.datasets.synthetic.rich_captions import \
        generate_rich_captions
    from clipdense.registry import DATASETS
    paths = generate_rich_captions(str(tmp_path / 'c'), seed=0, size=64,
                                   num_train=12, num_val=1, progress=False)
    ds = DATASETS.build(dict(
        type='CaptionDataset', data_root=paths['root'],
        ann_file=paths['clip_train'],
        keep_fields=('kind', 'objects', 'classes', 'seg_map',
                     'seg_classes', 'category', 'defect'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadCaptionSegMap'),
                  dict(type='Resize', scale=(32, 32), keep_ratio=False),
                  dict(type='PackCaptionInputs', with_masks=True,
                       classes=spec.CLASSES)]))
    samples = [ds[i] for i in range(len(ds))]
    seen = anomalies = 0
    for i, s in enumerate(samples):
        ds_ = s['data_samples']
        info = ds.get_data_info(i)
        if info['kind'] == 'anomaly':
            # version 4: the record names its own values
            cat = info['category']
            names = list(ds_['objects'])
            if info['defect'] is None:
                assert names == [f'intact {cat}']
            else:  # a small defect may vanish in the resize
                assert names[0] == f'intact {cat}'
                assert names[1:] in ([], [f'damaged {cat}'])
            anomalies += 1
            continue
        assert sorted(ds_['objects']) == sorted(info['classes'])
        assert ds_['masks'].shape[1:] == (32, 32)
        assert ds_['masks'].any(0).float().mean() > 0.9  # little ignore
        seen += 1
    assert seen >= 6 and anomalies >= 1
    # without seg_classes kept (a version-3 config such as candidate G's)
    # the anomaly images carry no label map, as in version 3
    old = DATASETS.build(dict(
        type='CaptionDataset', data_root=paths['root'],
        ann_file=paths['clip_train'],
        keep_fields=('kind', 'objects', 'classes', 'seg_map'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadCaptionSegMap'),
                  dict(type='Resize', scale=(32, 32), keep_ratio=False),
                  dict(type='PackCaptionInputs', with_masks=True,
                       classes=spec.CLASSES)]))
    for i in range(len(old)):
        info = old.get_data_info(i)
        if info['kind'] == 'anomaly':
            assert 'seg_map_path' not in info
            assert len(old[i]['data_samples']['objects']) == 0
        else:
            assert list(old[i]['data_samples']['objects']) == list(
                samples[i]['data_samples']['objects'])
    batch = pseudo_collate(samples)
    model = ContrastiveCLIP('clipdense-synth-vit8', object_loss_weight=1.0,
                            image_size=32)
    x = torch.stack(batch['inputs']).float() / 255
    out = model(x, batch['data_samples'], mode='loss')
    assert out['loss_object'] > 0
    out['loss_object'].backward()
    assert model.clip.visual.proj.grad.abs().sum() > 0


def test_pack_with_masks_is_checked():
    with pytest.raises(ValueError, match='classes'):
        PackCaptionInputs(with_masks=True)
    with pytest.raises(ValueError, match='pick one'):
        PackCaptionInputs(with_boxes=True, with_masks=True, classes=('a', ))
    pack = PackCaptionInputs(with_masks=True, classes=('a', 'b'))
    seg = np.full((4, 4), 255, np.uint8)
    seg[:2] = 1
    out = pack(dict(img=_img(4, 4), caption='c', gt_seg_map=seg))
    assert list(out['data_samples']['objects']) == ['b']
    assert out['data_samples']['masks'].sum() == 8
    with pytest.raises(ValueError, match='Resize'):
        pack(dict(img=_img(8, 8), caption='c', gt_seg_map=seg))
    # a record's own names (anomaly images) win over the class list
    seg[2:] = 0
    out = pack(dict(img=_img(4, 4), caption='c', gt_seg_map=seg,
                    seg_classes=['intact tile', 'damaged tile']))
    assert list(out['data_samples']['objects']) == ['intact tile',
                                                    'damaged tile']
    assert out['data_samples']['masks'].sum(dim=(1, 2)).tolist() == [8, 8]


def test_load_caption_seg_map_names_a_missing_file(tmp_path):
    from clipdense.datasets.transforms.caption import LoadCaptionSegMap
    t = LoadCaptionSegMap()
    assert t(dict(caption='c')) == dict(caption='c')  # no label map
    with pytest.raises(FileNotFoundError, match='version 3'):
        t(dict(seg_map_path=str(tmp_path / 'missing.png')))
