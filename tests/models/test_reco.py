"""ReCo: co-segmentation (per-image columns vs the reference code's slices),
the segmentor (forward, vocabulary at call time, concepts with no good
match, bad input), CRF availability, pseudo-labels."""
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clipdense.models.reco import (context_weights, reference_embedding,
                                   seed_scores, text_attention)
from clipdense.testing import register_tiny_models

ARCH = 'clipdense-tiny-rn'


# ---------------------------------------------------------------- co-segmentation
def _brute_force(features, weights, ranges):
    n, c, h, w = features.shape
    flat = F.normalize(features.permute(0, 2, 3, 1).reshape(-1, c), dim=-1)
    adj = (flat @ flat.T) * weights.reshape(1, -1)
    g = torch.stack([adj[:, s:e].max(dim=1).values for s, e in ranges], dim=1)
    return g.mean(dim=1).view(n, h, w)


def test_seed_scores_per_image_and_reference_code_slices():
    torch.manual_seed(0)
    feats = torch.randn(5, 8, 3, 4)
    weights = torch.rand(5, 3, 4)
    hw = 12
    per_image = [(j * hw, (j + 1) * hw) for j in range(5)]
    torch.testing.assert_close(seed_scores(feats, weights, chunk=7),
                               _brute_force(feats, weights, per_image))
    # the authors' loop: adj[:, start : start + end] with end = start + h*w
    ref_ranges, start = [], 0
    for _ in range(5):
        end = start + hw
        ref_ranges.append((start, min(start + end, 5 * hw)))
        start = end
    buggy = seed_scores(feats, weights, column_slicing='reference_code')
    torch.testing.assert_close(buggy, _brute_force(feats, weights, ref_ranges))
    assert not torch.allclose(buggy, seed_scores(feats, weights))
    # leaving the pixel's own image out of the mean
    own_out = seed_scores(feats, None, include_own_image=False)
    full = seed_scores(feats, None)
    # with the own image included, each pixel adds its self-similarity (1)
    torch.testing.assert_close(full * 5, own_out * 4 + 1, atol=1e-5, rtol=0)


def test_reference_finds_the_common_object():
    torch.manual_seed(1)
    k, c, h, w = 6, 16, 5, 5
    feats = torch.randn(k, c, h, w)
    common = torch.randn(c) * 3
    spots = [(i % h, (2 * i) % w) for i in range(k)]
    for i, (y, x) in enumerate(spots):
        feats[i, :, y, x] = common + 0.05 * torch.randn(c)
    ref, seeds, pos = reference_embedding(feats)
    assert [tuple(p) for p in pos.tolist()] == spots
    assert F.cosine_similarity(ref, common, dim=0) > 0.99
    assert seeds.shape == (k, c)
    # pixel weights steer it: zero weight on the common pixels of all but
    # image 0 (the target columns) removes their agreement
    weights = torch.ones(k, h, w)
    for i, (y, x) in enumerate(spots[1:], start=1):
        weights[i, y, x] = 0.0
    _, _, pos_w = reference_embedding(feats, weights)
    assert [tuple(p) for p in pos_w.tolist()] != spots


def test_text_attention_and_context_weights():
    torch.manual_seed(2)
    clip = torch.randn(2, 8, 3, 3)
    text = torch.randn(4, 8)
    att = text_attention(clip, text, 10.0, size=(6, 6))
    assert att.shape == (2, 4, 6, 6) and att.min() > 0 and att.max() < 1
    cos = torch.einsum('bdhw,kd->bkhw', F.normalize(clip, dim=1), F.normalize(text, dim=1))
    torch.testing.assert_close(text_attention(clip, text, 10.0), torch.sigmoid(10 * cos))
    assert text_attention(clip, text[0]).shape == (2, 3, 3)
    feats = torch.randn(3, 8, 4, 4)
    ctx = torch.randn(2, 8)
    cw = context_weights(feats, ctx)
    assert cw.shape == (3, 4, 4) and cw.min() > 0.27 ** 2 - 1e-6 and cw.max() < 0.74 ** 2
    torch.testing.assert_close(context_weights(feats, torch.zeros(0, 8)), torch.ones(3, 4, 4))


def test_bad_coseg_input():
    with pytest.raises(ValueError, match='column_slicing'):
        seed_scores(torch.randn(2, 4, 2, 2), column_slicing='rows')
    with pytest.raises(ValueError, match=r'weights must be \(k, h, w\)'):
        seed_scores(torch.randn(2, 4, 2, 2), torch.ones(2, 3, 3))
    with pytest.raises(ValueError, match=r'\(k, C, h, w\)'):
        seed_scores(torch.randn(4, 2, 2))


# ---------------------------------------------------------------- the segmentor
def _pool(folder, n=8):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(n):
        img = np.zeros((64, 80, 3), np.uint8)
        img[:32] = rng.randint(0, 255, 3)
        img[32:] = rng.randint(0, 255, 3)
        y, x = rng.randint(5, 40, 2)
        img[y:y + 16, x:x + 16] = rng.randint(0, 255, 3)
        cv2.imwrite(osp.join(folder, f'{i:02d}.png'), img)
    return str(folder)


def _model_cfg(pool, cache, vocabulary=('cup', 'grass', 'sky'), k=3, **head):
    register_tiny_models()
    return dict(
        type='ReCo',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[122.8, 116.7, 104.1],
                               std=[68.5, 66.6, 70.3], bgr_to_rgb=True, pad_val=0,
                               seg_pad_val=255),
        clip_backbone=dict(type='OpenCLIPResNet', arch=ARCH, pretrained=None,
                           out_indices=(2, 3), joint_outputs=('value', ), freeze='all'),
        dense_feature=0,
        decode_head=dict(type='ReCoHead',
                         text_encoder=dict(type='OpenCLIPTextEncoder', arch=ARCH,
                                           pretrained=None, templates='single'),
                         vocabulary=list(vocabulary), k=k,
                         context_concepts=['sky'], **head),
        index=dict(folder=pool, cache_file=str(cache), progress=False, batch_size=4),
        archive_size=64, archive_batch_size=2,
        test_cfg=dict(mode='whole'))


@pytest.fixture(scope='module')
def pool(tmp_path_factory):
    return _pool(tmp_path_factory.mktemp('reco') / 'pool')


def _build(cfg):
    from mmengine.registry import DefaultScope

    import clipdense.models  # noqa: F401
    from clipdense.registry import MODELS
    with DefaultScope.overwrite_default_scope('clipdense'):
        torch.manual_seed(0)
        return MODELS.build(cfg).eval()


def _samples(b, h, w):
    from mmseg.structures import SegDataSample
    return [SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w),
                                        pad_shape=(h, w), padding_size=[0, 0, 0, 0]))
            for _ in range(b)]


def test_segmentor_forward_and_references(pool, tmp_path):
    model = _build(_model_cfg(pool, tmp_path / 'idx.npz'))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        scores = model(x, mode='tensor')
        preds = model.predict(x, _samples(2, 64, 64))
    assert scores.shape == (2, 3, 64, 64) and torch.isfinite(scores).all()
    assert scores.min() > 0 and scores.max() < 1
    assert len(preds) == 2 and preds[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert int(preds[0].pred_sem_seg.data.max()) < 3
    torch.testing.assert_close(preds[1].seg_logits.data, scores[1])
    # one reference per concept; 'sky' is a context concept and reuses its
    # own reference; the retrieval used k distinct pool images per concept
    refs = model.references()
    assert refs.shape == (3, model.clip_backbone.out_channels[0]) and torch.allclose(refs.norm(dim=1), torch.ones(3))
    assert set(model.last_retrievals) == {'cup', 'grass', 'sky'}
    assert all(len(set(h.paths)) == 3 for h in model.last_retrievals.values())
    n_cached = len(model.decode_head._refs)
    model.references()
    assert len(model.decode_head._refs) == n_cached  # cached, not recomputed
    # index stored and reused by a second model
    assert osp.isfile(tmp_path / 'idx.npz')
    again = _build(_model_cfg(pool, tmp_path / 'idx.npz'))
    again.references()
    assert again.index.last_build['status'] == 'reused'
    with pytest.raises(RuntimeError, match='training-free'):
        model.loss(x, _samples(2, 64, 64))


def test_concept_with_no_good_match_and_options(pool, tmp_path):
    vocab = ['cup', 'a purple xylophone played by quantum zebras', 'zzqx']
    for opts in (dict(), dict(language_guidance=False, context_elimination=False),
                 dict(column_slicing='reference_code', include_own_image=False),
                 dict(dense_clip_inference=False)):
        model = _build(_model_cfg(pool, tmp_path / 'idx.npz', vocabulary=vocab, **opts))
        with torch.no_grad():
            scores = model(torch.randn(1, 3, 64, 64), mode='tensor')
        assert scores.shape == (1, 3, 64, 64) and torch.isfinite(scores).all()


def test_vocabulary_at_call_time(pool, tmp_path):
    from mmengine.config import Config

    from clipdense.apis import inference_model, init_model
    cfg = Config(dict(model=_model_cfg(pool, tmp_path / 'idx.npz'), default_scope='clipdense',
                      test_pipeline=[dict(type='LoadImageFromFile'),
                                     dict(type='PackSegInputs')]))
    model = init_model(cfg)
    img = cv2.imread(osp.join(pool, '00.png'))
    res = inference_model(model, img, vocabulary=['ball', 'road'])
    assert res.pred_sem_seg.data.shape == (1, 64, 80)
    assert int(res.pred_sem_seg.data.max()) < 2 and res.seg_logits.data.shape[0] == 2
    assert model.num_classes == 2 and model.dataset_meta['classes'] == ('ball', 'road')
    assert set(model.last_retrievals) >= {'ball', 'road'}
    res = inference_model(model, img, vocabulary=['ball', 'road', 'sky', 'cup'])
    assert res.seg_logits.data.shape[0] == 4
    with pytest.raises(ValueError, match='repeats'):
        inference_model(model, img, vocabulary=['ball', 'Ball'])


def test_bad_input(pool, tmp_path):
    model = _build(_model_cfg(pool, tmp_path / 'idx.npz', k=50))
    with pytest.raises(ValueError, match=r'k=50 but the index .* holds only 8 images'):
        model(torch.randn(1, 3, 64, 64), mode='tensor')
    (tmp_path / 'empty').mkdir()
    model = _build(_model_cfg(str(tmp_path / 'empty'), tmp_path / 'e.npz'))
    with pytest.raises(ValueError, match='no images found'):
        model(torch.randn(1, 3, 64, 64), mode='tensor')
    with pytest.raises(ValueError, match='index=dict\\(folder'):
        cfg = _model_cfg(pool, tmp_path / 'x.npz')
        cfg['index'] = dict()
        _build(cfg)
    with pytest.raises(ValueError, match='num_classes=5'):
        cfg = _model_cfg(pool, tmp_path / 'x.npz')
        cfg['decode_head']['num_classes'] = 5
        _build(cfg)
    with pytest.raises(ValueError, match='k \\(images retrieved'):
        _build(_model_cfg(pool, tmp_path / 'x.npz', k=0))


def test_crf_without_pydensecrf_fails_clearly(pool, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'pydensecrf', None)
    monkeypatch.setitem(sys.modules, 'pydensecrf.densecrf', None)
    cfg = _model_cfg(pool, tmp_path / 'idx.npz')
    cfg['crf'] = dict(iters=10)
    with pytest.raises(ImportError, match='pip install pydensecrf2'):
        _build(cfg)


def test_pseudo_labels(pool, tmp_path):
    from mmengine.config import Config

    from clipdense.apis import init_model, write_pseudo_labels
    cfg = Config(dict(model=_model_cfg(pool, tmp_path / 'idx.npz'), default_scope='clipdense',
                      test_pipeline=[dict(type='LoadImageFromFile'),
                                     dict(type='PackSegInputs')]))
    model = init_model(cfg)
    out = tmp_path / 'pseudo'
    meta = write_pseudo_labels(model, pool, str(out), progress=False)
    assert meta['count'] == 8 and meta['classes'] == ['cup', 'grass', 'sky']
    split = (out / 'split.txt').read_text().split()
    assert split == [f'{i:02d}' for i in range(8)]
    lab = cv2.imread(str(out / '00.png'), cv2.IMREAD_UNCHANGED)
    assert lab.shape == (64, 80) and lab.dtype == np.uint8 and lab.max() < 3
    assert json.loads((out / 'meta.json').read_text())['count'] == 8
    # the mmseg dataset reads them as labels of the pool images
    from mmseg.datasets import BaseSegDataset
    ds = BaseSegDataset(data_root='', data_prefix=dict(img_path=pool, seg_map_path=str(out)),
                        ann_file=str(out / 'split.txt'), img_suffix='.png',
                        seg_map_suffix='.png', metainfo=dict(classes=meta['classes']),
                        lazy_init=False)
    assert len(ds) == 8 and ds[0]['seg_map_path'].endswith('00.png')
    with pytest.raises(ValueError, match='no images'):
        (tmp_path / 'none').mkdir()
        write_pseudo_labels(model, str(tmp_path / 'none'), str(tmp_path / 'o'), progress=False)


def test_timm_patch_tokens(tmp_path):
    from clipdense.models.backbones import TimmViTPatchTokens
    torch.manual_seed(0)
    enc = TimmViTPatchTokens('deit_tiny_distilled_patch16_224', None)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        (feat, ) = enc(x)
    assert feat.shape == (1, 192, 4, 6)  # class and distillation tokens removed
    # the authors' checkpoint layout: under 'model', with classifier heads
    sd = {k: v.clone() for k, v in enc.model.state_dict().items()}
    sd.update({'head.weight': torch.zeros(1000, 192), 'head_dist.weight': torch.zeros(1000, 192)})
    torch.save({'model': sd}, tmp_path / 'w.pth')
    loaded = TimmViTPatchTokens('deit_tiny_distilled_patch16_224', str(tmp_path / 'w.pth'))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], feat)
    assert not any(p.requires_grad for p in loaded.parameters())
    with pytest.raises(ValueError, match='missing keys'):
        del sd['blocks.0.norm1.weight']
        torch.save(sd, tmp_path / 'bad.pth')
        TimmViTPatchTokens('deit_tiny_distilled_patch16_224', str(tmp_path / 'bad.pth'))
    with pytest.raises(FileNotFoundError, match='download the checkpoint'):
        TimmViTPatchTokens('deit_tiny_distilled_patch16_224', str(tmp_path / 'none.pth'))


# ------------------------------------------------ issue 22: authors' defaults,
# switches, disk cache, fine-to-coarse, CRF
def test_progressive_context_elimination(pool, tmp_path):
    cfg = _model_cfg(pool, tmp_path / 'idx.npz', vocabulary=['cup'])
    cfg['decode_head']['context_concepts'] = ['sky', 'grass', 'road']
    prog = _build(cfg)
    assert prog.decode_head.column_slicing == 'reference_code'  # the authors' default
    assert prog.decode_head.progressive_context_elimination
    cfg['decode_head']['progressive_context_elimination'] = False
    flat = _build(cfg)
    with torch.no_grad():
        prog.references()
        flat.references()
        # the first context has nothing to eliminate; later ones differ
        sky = prog._reference('sky', {})
        torch.testing.assert_close(sky, flat._reference('sky', {}))
        grass_prog = prog._reference('grass', {'sky': sky})
        assert not torch.allclose(grass_prog, flat._reference('grass', {}), atol=1e-5)
    # the progressive model built grass with sky eliminated (cached), the
    # other without
    keys = {k[-2:] for k in prog.decode_head._refs}
    assert ('grass', ('sky', )) in keys and ('road', ('sky', 'grass')) in keys
    assert ('grass', ()) in {k[-2:] for k in flat.decode_head._refs}


def test_reference_disk_cache(pool, tmp_path):
    cache = tmp_path / 'refs'
    cfg = _model_cfg(pool, tmp_path / 'idx.npz')
    cfg['reference_cache'] = str(cache)
    first = _build(cfg)
    with torch.no_grad():
        refs = first.references()
    files = sorted(os.listdir(cache))
    # one file per (concept, contexts): sky (context, reused as target), cup, grass
    assert len(files) == 3 and all(f.endswith('.safetensors') for f in files)
    assert first.reference_cache_hits == 0
    # a new process-like model: all from disk, nothing retrieved
    second = _build(cfg)
    with torch.no_grad():
        torch.testing.assert_close(second.references(), refs)
    assert second.reference_cache_hits == 3 and not second.last_retrievals
    # the stored key names what the reference depends on
    from safetensors import safe_open
    with safe_open(str(cache / files[0]), framework='pt') as f:
        key = json.loads(f.metadata()['key'])
    assert {'concept', 'contexts', 'options', 'weights', 'index', 'archive'} <= set(key)
    # a half-written (truncated) file is ignored with a warning and rewritten
    path = cache / files[0]
    path.write_bytes(path.read_bytes()[:40])
    third = _build(cfg)
    with pytest.warns(UserWarning, match='unreadable cached reference'), torch.no_grad():
        torch.testing.assert_close(third.references(), refs)
    assert third.reference_cache_hits == 2
    with safe_open(str(path), framework='pt') as f:
        assert f.get_tensor('reference').shape == refs.shape[1:]
    # other settings (k) do not reuse them
    cfg_k = _model_cfg(pool, tmp_path / 'idx.npz', k=2)
    cfg_k['reference_cache'] = str(cache)
    other = _build(cfg_k)
    with torch.no_grad():
        other.references()
    assert other.reference_cache_hits == 0 and len(os.listdir(cache)) == 6
    # nor other weights (here they also re-embed the index: retrieval uses
    # the same CLIP)
    moved = _build(cfg)
    with torch.no_grad():
        for p in moved.clip_backbone.parameters():
            p.add_(0.01)
        moved.references()
    assert moved.reference_cache_hits == 0 and len(os.listdir(cache)) == 9
    assert moved.reference_cache_key('cup', ['sky'])['weights'] != key['weights']
    assert not [f for f in os.listdir(cache) if f.endswith('.tmp')]


def test_fine_to_coarse(pool, tmp_path):
    cfg = _model_cfg(pool, tmp_path / 'idx.npz', vocabulary=('cup', 'grass', 'sky'))
    cfg['decode_head']['fine_to_coarse'] = [1, 0, 0]
    model = _build(cfg)
    assert model.decode_head.num_outputs == 2
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        scores = model(x, mode='tensor')
        preds = model.predict(x, _samples(2, 64, 64))
    lut = torch.tensor([1, 0, 0])
    for i in range(2):
        # argmax over the fine classes first, then the map (the authors)
        torch.testing.assert_close(preds[i].pred_sem_seg.data[0], lut[scores[i].argmax(0)])
        assert preds[i].seg_logits.data.shape[0] == 3
    with pytest.raises(ValueError, match='one output class per vocabulary entry'):
        cfg['decode_head']['fine_to_coarse'] = [0, 1]
        _build(cfg)
    model.decode_head.set_vocabulary(['ball', 'road'])
    assert model.decode_head.fine_to_coarse is None


def test_dense_crf_refines_along_colour_edges():
    """The CRF (pydensecrf2, requirements/runtime.txt) with ReCo's
    parameters: noisy scores on a two-colour image snap to the colours."""
    from clipdense.models.reco import DenseCRF
    crf = DenseCRF(iters=10)
    rgb = np.zeros((24, 24, 3), np.uint8)
    rgb[:, 12:] = 255
    truth = torch.zeros(24, 24, dtype=torch.long)
    truth[:, 12:] = 1
    scores = torch.stack([(truth == 0).float(), (truth == 1).float()]) * 0.6 + 0.2
    g = torch.Generator().manual_seed(0)
    flip = torch.rand(24, 24, generator=g) < 0.15
    scores[:, flip] = scores[:, flip].flip(0)  # 15% of the pixels wrong
    assert (scores.argmax(0) != truth).sum() > 40
    q = crf.refine(rgb, scores)
    assert q.shape == (2, 24, 24)
    torch.testing.assert_close(q.sum(0), torch.ones(24, 24), atol=1e-4, rtol=0)
    assert (q.argmax(0) != truth).sum() < 5
    # batch form, uint8 RGB tensors
    qb = crf.refine_batch(torch.from_numpy(rgb).permute(2, 0, 1)[None], scores[None])
    torch.testing.assert_close(qb[0], q)


def test_reco_with_crf(pool, tmp_path):
    cfg = _model_cfg(pool, tmp_path / 'idx.npz')
    cfg['crf'] = dict(iters=3)
    model = _build(cfg)
    with torch.no_grad():
        preds = model.predict(torch.randn(1, 3, 64, 64), _samples(1, 64, 64))
    probs = preds[0].seg_logits.data
    assert probs.shape == (3, 64, 64)
    torch.testing.assert_close(probs.sum(0), torch.ones(64, 64), atol=1e-4, rtol=0)


def test_timm_patch_tokens_at_sizes_not_divisible_by_the_patch():
    """KITTI-STEP's native 375x1242: the remainder is dropped, as the
    authors' strided patch convolution does."""
    from clipdense.models.backbones import TimmViTPatchTokens
    enc = TimmViTPatchTokens('deit_tiny_distilled_patch16_224', None)
    x = torch.randn(1, 3, 75, 100)
    with torch.no_grad():
        (feat, ) = enc(x)
        (ref, ) = enc(x[:, :, :64, :96])
    assert feat.shape == (1, 192, 4, 6)
    torch.testing.assert_close(feat, ref)


def test_cocostuff27_paper_config_vocabulary():
    """The COCO-Stuff-27 paper config segments the 171 fine classes (ReCo's
    spelling: mmseg's COCO-Stuff names with spaces for hyphens) and maps
    them to the dataset's 27 coarse classes."""
    from mmengine.config import Config
    from mmseg.datasets import COCOStuffDataset

    from clipdense.datasets.coco_stuff27 import (COARSE_GROUPS, COCO_STUFF_27,
                                                 COCO_STUFF_171, fine171_to_coarse27)
    from clipdense.testing.runs import ROOT
    cfg = Config.fromfile(osp.join(ROOT, 'configs/reco/reco_rn50x16-openai_cocostuff27-320x320.py'))
    head = cfg.model.decode_head
    assert tuple(head.vocabulary) == COCO_STUFF_171
    # the table is named, and resolved from its one source
    from clipdense.models.reco.reco_head import ReCoHead
    assert head.fine_to_coarse == 'cocostuff27'
    assert list(ReCoHead._check_map(head.fine_to_coarse, 171)) == fine171_to_coarse27()
    with pytest.raises(ValueError, match="unknown fine_to_coarse table 'coco'.*cocostuff27"):
        ReCoHead._check_map('coco', 171)
    assert tuple(cfg.test_dataloader.dataset.metainfo.classes) == COCO_STUFF_27
    assert [c.replace('-', ' ') for c in COCOStuffDataset.METAINFO['classes']] == \
        list(COCO_STUFF_171)
    assert sorted(sum(COARSE_GROUPS.values(), ())) == sorted(COCO_STUFF_171)
