"""OVSeg: masked crops, mask prompt tuning, the ensemble, the head and
segmentor, mask-prompt training, bad input."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from clipdense.registry import MODELS
from clipdense.testing import register_tiny_models

register_tiny_models()

from clipdense.testing.ovseg import ALL, SEEN, head_cfg, model_cfg  # noqa: E402


def seg_batch(model, n=2, size=64, labels=(0, 1, 2)):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(1)
    inputs, samples = [], []
    for i in range(n):
        img = torch.randint(0, 255, (3, size, size), generator=g, dtype=torch.uint8)
        seg = torch.full((1, size, size), labels[0], dtype=torch.long)
        seg[:, 8:40, 8:30] = labels[1 % len(labels)]
        seg[:, :6] = labels[2 % len(labels)]
        img[:, 8:40, 8:30] = torch.tensor([220, 40, 40], dtype=torch.uint8).view(3, 1, 1)
        img[:, :6] = torch.tensor([120, 180, 250], dtype=torch.uint8).view(3, 1, 1)
        ds = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        ds.gt_sem_seg = PixelData(data=seg)
        inputs.append(img)
        samples.append(ds)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)


# ----------------------------------------------------------------------
# crops

def test_crop_geometry_and_mean_fill():
    from clipdense.models.region_classifiers import (CLIP_MEAN, MaskedCropCLIP,
                                                     crop_with_masks, mask_boxes)
    img = torch.arange(3 * 20 * 30, dtype=torch.float32).view(3, 20, 30) % 251
    masks = torch.zeros(3, 20, 30, dtype=torch.bool)
    masks[0, 5:9, 10:16] = True  # box 4x6
    masks[0, 6, 12] = False  # a hole inside the box
    masks[1, 2:4, 0:24] = True  # wide box 2x24
    fill = tuple(255 * m for m in CLIP_MEAN)
    boxes, valid = mask_boxes(masks)
    assert valid.tolist() == [True, True, False]
    assert boxes[0].tolist() == [5, 9, 10, 16] and boxes[1].tolist() == [2, 4, 0, 24]
    # the output size of the first box: no resampling, exact values
    crops, cmasks, valid = crop_with_masks(img, masks, (4, 6), fill=fill)
    assert crops.shape == (2, 3, 4, 6) and cmasks.shape == (2, 4, 6)
    region = img[:, 5:9, 10:16]
    m = masks[0, 5:9, 10:16]
    assert torch.equal(cmasks[0], m)
    assert torch.allclose(crops[0][:, m], region[:, m])
    bg = crops[0][:, ~m]
    assert torch.allclose(bg, torch.tensor(fill).view(3, 1).expand_as(bg))
    # squashed (aspect ratio not kept): the 2x24 box fills an 8x8 crop
    crops, cmasks, _ = crop_with_masks(img, masks, 8, fill=fill)
    assert crops.shape == (2, 3, 8, 8) and bool(cmasks[1].all())
    assert float(crops.min()) >= 0 and float(crops.max()) <= 255
    # after CLIP normalisation the background is zero
    clip = MaskedCropCLIP('clipdense-tiny-vit16')
    corners = torch.zeros(1, 20, 30, dtype=torch.bool)
    corners[0, :3, :3] = corners[0, -3:, -3:] = True  # box = the whole image
    crops, cmasks, _ = clip.crops(img, corners)
    assert crops.shape == (1, 3, 64, 64)
    normed = clip.normalize(crops)
    # away from the foreground (bicubic blends 2 source pixels) it is zero
    assert normed[0, :, 16:48, 16:48].abs().max() < 1e-4
    assert not cmasks[0, 16:48, 16:48].any() and cmasks[0, 0, 0]


def test_crops_of_empty_proposals():
    from clipdense.models.region_classifiers import MaskedCropCLIP
    clip = MaskedCropCLIP('clipdense-tiny-rn')
    img = torch.rand(3, 32, 32) * 255
    logits, valid = clip.classify(img, torch.zeros(5, 32, 32, dtype=torch.bool),
                                  F.normalize(torch.randn(4, 32), dim=-1))
    assert logits.shape == (5, 4) and not valid.any() and not logits.any()


# ----------------------------------------------------------------------
# mask prompt tuning

def test_patch_keep_mask_ceil():
    from clipdense.models.region_classifiers import patch_keep_mask
    m = torch.zeros(1, 32, 32, dtype=torch.bool)
    m[0, 0, 0] = True  # one pixel in patch (0, 0)
    m[0, 16:32, 16:32] = True  # all of patch (1, 1)
    keep = patch_keep_mask(m, 16)
    assert keep.tolist() == [[1.0, 0.0, 0.0, 1.0]]


def test_mpt_replaces_only_fully_masked_patches():
    from clipdense.models.region_classifiers import MaskedCropCLIP
    clip = MaskedCropCLIP('clipdense-tiny-vit16', prompt_depth=2).eval()
    plain = MaskedCropCLIP('clipdense-tiny-vit16').eval()
    plain.tower.load_state_dict(clip.tower.state_dict())
    with torch.no_grad():
        clip.mask_prompts.normal_()
    g = torch.Generator().manual_seed(0)
    crops = torch.rand(1, 3, 64, 64, generator=g) * 255
    full = torch.ones(1, 64, 64, dtype=torch.bool)
    with torch.no_grad():
        # nothing masked: prompts unused, equal to the plain tower
        assert torch.allclose(clip(crops, full), plain(crops), atol=1e-5)
        mask = torch.zeros(1, 64, 64, dtype=torch.bool)
        mask[0, :20, :20] = True  # patches (0,0) full, (0,1),(1,0),(1,1) partial
        ref = clip(crops, mask)
        other = crops.clone()
        other[:, :, 40:, 40:] = 0  # only inside fully-masked patches
        assert torch.allclose(clip(other, mask), ref, atol=1e-6)
        other = crops.clone()
        other[:, :, 18:32, 18:32] = 0  # background of a partially-masked patch
        assert not torch.allclose(clip(other, mask), ref, atol=1e-4)
        # the prompts are used where patches are fully masked
        clip.mask_prompts.add_(torch.randn_like(clip.mask_prompts))
        assert not torch.allclose(clip(crops, mask), ref, atol=1e-4)


def test_prompt_tuning_leaves_clip_weights_unchanged():
    from clipdense.models.region_classifiers import MaskedCropCLIP
    clip = MaskedCropCLIP('clipdense-tiny-vit16', prompt_depth=3)
    before = {k: v.clone() for k, v in clip.tower.state_dict().items()}
    trainable = [n for n, p in clip.named_parameters() if p.requires_grad]
    assert trainable == ['mask_prompts']
    opt = torch.optim.SGD([p for p in clip.parameters() if p.requires_grad], lr=1.0)
    crops = torch.rand(4, 3, 64, 64) * 255
    masks = torch.zeros(4, 64, 64, dtype=torch.bool)
    masks[:, 10:30, 10:50] = True
    emb = clip(crops, masks)
    loss = -(emb @ F.normalize(torch.randn(emb.shape[1]), dim=0)).mean()
    loss.backward()
    opt.step()
    assert clip.mask_prompts.abs().sum() > 0
    for k, v in clip.tower.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_mask_prompt_clip_trainer_step():
    from clipdense.models.pretraining import (MaskPromptCLIP, masks_from_filled_crops,
                                              store_crop_with_fill)
    from clipdense.models.region_classifiers import CLIP_MEAN, crop_with_masks
    mean = [255 * m for m in CLIP_MEAN]
    model = MaskPromptCLIP('clipdense-tiny-vit16', prompt_depth=2, data_preprocessor=dict(
        type='ImgDataPreprocessor', mean=mean, std=[68.5, 66.6, 70.3]))
    clip_before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    img = torch.rand(3, 64, 64) * 255
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 5:40, 5:30] = True
    masks[0, 5:30, 5:20] = False  # L-shaped: fully-masked patches in the crop
    masks[1, 30:60, 20:64] = True
    masks[1, 30:50, 30:64] = False
    crops, cmasks, _ = crop_with_masks(img, masks, 64)
    assert (cmasks.float().mean((1, 2)) < 0.6).all()
    stored = [store_crop_with_fill(c, m).permute(2, 0, 1) for c, m in zip(crops, cmasks)]
    data = model.data_preprocessor(dict(inputs=stored, data_samples=[
        dict(caption='cup'), dict(caption='ball')]), True)
    rec = masks_from_filled_crops(data['inputs'], model.data_preprocessor.mean,
                                  model.data_preprocessor.std)
    # stored with the authors' colour: the recovered mask is the crop mask
    # (up to foreground pixels that happen to have the fill colour)
    assert (rec | ~cmasks).all()
    assert (rec & ~cmasks).sum() == 0
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    losses = model(**data, mode='loss')
    losses['loss_contrastive'].backward()
    opt.step()
    assert model.mask_prompts.abs().sum() > 0
    for k, v in model.clip.state_dict().items():
        assert torch.equal(v, clip_before[k]), k


def _authors_maskget(arr):
    """OVSeg's ``Maskget`` rule (open_clip_training/src/open_clip/transform.py),
    restated: foreground = not all three uint8 channels equal (124, 116, 103)."""
    import numpy as np
    return ~(arr == np.array((124, 116, 103), dtype=np.uint8)).all(axis=2)


def test_mask_recovery_on_crops_made_the_authors_way(tmp_path):
    """A crop stored as the authors' adaptation data is (uint8 PNG whose
    background is exactly (124, 116, 103)) goes through the adaptation
    pipeline (PNG load, resize, CLIP normalisation): the recovered mask is
    ``Maskget``'s on the resized image, fully-background patches get the
    prompts, and the prompts change the embedding."""
    import mmcv
    import numpy as np
    from mmcv.transforms import Compose

    from clipdense.models.pretraining import (OVSEG_STORED_FILL, MaskPromptCLIP,
                                              masks_from_filled_crops)
    from clipdense.models.region_classifiers import CLIP_MEAN, CLIP_STD, patch_keep_mask
    assert OVSEG_STORED_FILL == (124, 116, 103)
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    fg = np.zeros((48, 40), bool)
    fg[4:30, 6:22] = True  # an object in the top-left part of its box
    fg[30:44, 28:38] = True
    arr[~fg] = (124, 116, 103)
    # a foreground pixel of the old clipdense colour stays foreground
    arr[10, 10] = (123, 117, 104)
    path = str(tmp_path / 'crop.png')
    mmcv.imwrite(arr[:, :, ::-1], path)  # RGB -> BGR file, lossless
    pipeline = Compose([dict(type='LoadImageFromFile'),
                        dict(type='Resize', scale=(64, 64), keep_ratio=False,
                             interpolation='bicubic'),
                        dict(type='PackCaptionInputs')])
    data = pipeline(dict(img_path=path, caption='cup'))
    model = MaskPromptCLIP('clipdense-tiny-vit16', prompt_depth=2, data_preprocessor=dict(
        type='ImgDataPreprocessor', mean=[255 * m for m in CLIP_MEAN],
        std=[255 * s for s in CLIP_STD], bgr_to_rgb=True))
    batch = model.data_preprocessor(dict(inputs=[data['inputs']],
                                         data_samples=[data['data_samples']]), True)
    rec = masks_from_filled_crops(batch['inputs'], model.data_preprocessor.mean,
                                  model.data_preprocessor.std)
    resized_rgb = data['inputs'].permute(1, 2, 0).numpy()[:, :, ::-1]
    want = torch.from_numpy(_authors_maskget(np.ascontiguousarray(resized_rgb)))
    assert torch.equal(rec[0], want)
    assert (~rec[0]).sum() > 64 * 64 // 3  # most of the background is recovered
    keep = patch_keep_mask(rec, 16)
    assert (keep == 0).any() and (keep == 1).any()
    # the prompts act on those patches
    with torch.no_grad():
        before = model._encode_image(batch['inputs']).clone()
        model.mask_prompts.normal_()
        after = model._encode_image(batch['inputs'])
    assert not torch.allclose(before, after)
    # the old rule's colour is not the authors': a crop filled with it has
    # no background, so the prompts would never act
    old = np.where(fg[..., None], arr, np.array((123, 117, 104), np.uint8))
    inp = (torch.from_numpy(old).permute(2, 0, 1)[None].float()
           - model.data_preprocessor.mean) / model.data_preprocessor.std
    assert masks_from_filled_crops(inp, model.data_preprocessor.mean,
                                   model.data_preprocessor.std).all()
    with pytest.raises(ValueError, match='fill'):
        masks_from_filled_crops(inp, model.data_preprocessor.mean,
                                model.data_preprocessor.std, fill=(1, 2))


# ----------------------------------------------------------------------
# ensemble

def test_ensemble_formula_and_branches():
    from clipdense.models.decode_heads import ovseg_ensemble
    mf = torch.randn(2, 5, 4)  # K = 3 + no-object
    clip = torch.randn(2, 5, 4)
    p_mf = mf.softmax(-1)[..., :3]
    p_clip = clip[..., :3].softmax(-1)
    assert torch.allclose(ovseg_ensemble(mf, clip, 0.0), p_mf)
    assert torch.allclose(ovseg_ensemble(mf, clip, 1.0), p_clip)
    assert torch.allclose(ovseg_ensemble(mf, clip, 0.3), p_mf ** 0.7 * p_clip ** 0.3)
    # the CLIP no-object column is dropped before the softmax ...
    clip2 = clip.clone()
    clip2[..., 3] += 10
    assert torch.allclose(ovseg_ensemble(mf, clip2, 0.6), ovseg_ensemble(mf, clip, 0.6))
    # ... the MaskFormer one after it
    mf2 = mf.clone()
    mf2[..., 3] += 1
    assert not torch.allclose(ovseg_ensemble(mf2, clip, 0.6), ovseg_ensemble(mf, clip, 0.6))
    # empty masks: p_clip = 1
    valid = torch.ones(2, 5, dtype=torch.bool)
    valid[0, 1] = False
    out = ovseg_ensemble(mf, clip, 0.6, valid)
    assert torch.allclose(out[0, 1], p_mf[0, 1] ** 0.4)
    with pytest.raises(ValueError, match='lambda'):
        ovseg_ensemble(mf, clip, 1.5)
    with pytest.raises(ValueError, match='columns'):
        ovseg_ensemble(mf, clip[..., :2], 0.5)


# ----------------------------------------------------------------------
# head and segmentor

def test_forward_modes_and_branches():
    model = MODELS.build(model_cfg())
    model.init_weights()
    data = seg_batch(model)
    losses = model(**data, mode='loss')
    assert {'decode.loss_cls', 'decode.loss_mask', 'decode.loss_dice',
            'decode.d0.loss_cls'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    cls, masks = model(data['inputs'], data['data_samples'], mode='tensor')
    # eval mode: the inference vocabulary (+ no-object); (layers, B, Q, K+1)
    assert cls.shape == (2, 2, 6, len(ALL) + 1) and masks.shape[:3] == (2, 2, 6)
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert int(out[0].pred_sem_seg.data.max()) < len(ALL)
    # lambda 0 and 1 reduce to each branch
    head = model.decode_head
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        metas = [ds.metainfo for ds in data['data_samples']]
        image = model._images_0_255(data['inputs'])
        cls, masks = head.predict_proposals(x, metas, image.shape[-2:])
        clip, valid = head.clip_logits(image[0], masks[0])
        head.ensemble_weight = 0.0
        s0 = head.predict(x, metas, image=image)
        assert torch.allclose(s0[0], torch.einsum(
            'qc,qhw->chw', cls[0].softmax(-1)[:, :-1], masks[0].sigmoid()), atol=1e-5)
        head.ensemble_weight = 1.0
        s1 = head.predict(x, metas, image=image)
        p = torch.where(valid[:, None], clip[:, :-1].softmax(-1), torch.ones_like(clip[:, :-1]))
        assert torch.allclose(s1[0], torch.einsum('qc,qhw->chw', p, masks[0].sigmoid()),
                              atol=1e-4)
        with pytest.raises(ValueError, match='needs the image'):
            head.predict(x, metas)


def test_empty_proposals_do_not_crash():
    model = MODELS.build(model_cfg()).eval()
    data = seg_batch(model, n=1)
    head = model.decode_head
    orig = head.predict_proposals

    def empty(*args, **kw):
        cls, masks = orig(*args, **kw)
        return cls, torch.full_like(masks, -20.0)  # every mask below mask_thr
    head.predict_proposals = empty
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)


def test_hungarian_loss_falls_on_tiny_world(tmp_path):
    from clipdense.datasets.synthetic import spec
    from clipdense.registry import DATASETS
    from clipdense.testing.runs import make_tiny_world
    make_tiny_world(tmp_path / 'w')
    model = MODELS.build(model_cfg(vocabulary=['ball', 'cup', 'bottle', 'knife', 'hammer',
                                               'key', 'mug', 'spoon', 'racket', 'scissors',
                                               'sky', 'grass', 'road'],
                                   train_vocabulary=['ball', 'cup', 'bottle', 'knife', 'hammer',
                                                     'key', 'spoon', 'racket', 'sky', 'grass']))
    model.init_weights()
    seen = [c for c in spec.CLASSES if c not in spec.UNSEEN_CLASSES]
    dataset = DATASETS.build(dict(
        type='SyntheticSegDataset', data_root=str(tmp_path / 'w'), style='flat',
        split='train', metainfo=dict(classes=seen),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')]))
    items = [dataset[i] for i in range(4)]
    batch = dict(inputs=[it['inputs'] for it in items],
                 data_samples=[it['data_samples'] for it in items])
    data = model.data_preprocessor(batch, True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3)
    model.train()
    first = None
    for it in range(40):
        losses = model(**copy.deepcopy(data), mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        total.backward()
        opt.step()
        if first is None:
            first = float(total.detach())
    last = float(total.detach())
    assert last < 0.7 * first, (first, last)


def test_set_vocabulary_and_inference_api(tmp_path):
    import numpy as np

    from clipdense.apis import inference_model, init_model
    cfg = Config(dict(
        default_scope='clipdense', model=model_cfg(),
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]))
    model = init_model(cfg)
    img = (np.random.RandomState(0).rand(48, 40, 3) * 255).astype(np.uint8)
    res = inference_model(model, img, vocabulary=['grass', 'road'])
    assert res.pred_sem_seg.data.shape == (1, 48, 40)
    assert int(res.pred_sem_seg.data.max()) < 2
    assert model.decode_head.num_classes == 2
    assert model.dataset_meta['classes'] == ('grass', 'road')
    assert model.decode_head.train_vocabulary == tuple(SEEN)


# ----------------------------------------------------------------------
# bad input

def test_bad_input():
    from clipdense.models.region_classifiers import MaskedCropCLIP, crop_with_masks
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(head_cfg(num_classes=7))
    with pytest.raises(ValueError, match='class_weight'):
        MODELS.build(head_cfg(loss_cls=dict(type='mmdet.CrossEntropyLoss',
                                            class_weight=[1.0] * 9)))
    with pytest.raises(ValueError, match='clip_classifier'):
        MODELS.build(head_cfg(clip=False, ensemble_weight=0.5))
    with pytest.raises(ValueError, match='mask_thr'):
        MODELS.build(head_cfg(mask_thr=1.0))
    with pytest.raises(ValueError, match='ViT'):
        MaskedCropCLIP('clipdense-tiny-rn', prompt_depth=1)
    with pytest.raises(ValueError, match='exceeds'):
        MaskedCropCLIP('clipdense-tiny-vit16', prompt_depth=9)
    with pytest.raises(ValueError, match='unknown open_clip'):
        MaskedCropCLIP('no-such-arch')
    with pytest.raises(ValueError, match='crop_masks'):
        MaskedCropCLIP('clipdense-tiny-vit16', prompt_depth=1)(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        crop_with_masks(torch.zeros(3, 8, 8), torch.zeros(2, 4, 4, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match=r'\(3, H, W\)'):
        crop_with_masks(torch.zeros(8, 8), torch.zeros(2, 8, 8, dtype=torch.bool), 4)
    from clipdense.models.pretraining import MaskPromptCLIP
    with pytest.raises(ValueError, match='ResNet'):
        MaskPromptCLIP('clipdense-tiny-rn')
    # ground truth outside the train vocabulary
    model = MODELS.build(model_cfg())
    data = seg_batch(model, labels=(0, 1, 3))
    with pytest.raises(ValueError, match='train vocabulary'):
        model(**data, mode='loss')
