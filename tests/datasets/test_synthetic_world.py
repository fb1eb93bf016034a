"""The synthetic world generator: formats, determinism, caching, shift."""
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from clipdense.datasets.synthetic import generate_world, spec
from clipdense.datasets.synthetic import world as world_mod
from clipdense.datasets.synthetic.render import render
from clipdense.datasets.synthetic.scene import (CLASS_ID, PART_ID, compose,
                                                sample_layout, sample_scene,
                                                transform_shape, SceneObject)
from clipdense.datasets.synthetic.writers import rle_decode, rle_encode

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# A tiny world: a handful of 64x64 images per part.
TINY = dict(size=64, num_train=4, num_val=2, clip_size=48, num_clip_train=6,
            num_clip_val=2, num_cls_per_class=1, num_anomaly_train=2,
            num_anomaly_good=1, num_anomaly_defect=1, num_refer_train=4,
            num_refer_val=2, num_agd_per_pair=1, progress=False)


def tree_digest(root):
    """sha1 of every file (relative path + bytes) under root."""
    h = hashlib.sha1()
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for name in sorted(files):
            p = osp.join(dirpath, name)
            h.update(osp.relpath(p, root).encode())
            with open(p, 'rb') as f:
                h.update(hashlib.sha1(f.read()).digest())
    return h.hexdigest()


@pytest.fixture(scope='module')
def tiny_world(tmp_path_factory):
    out = tmp_path_factory.mktemp('world') / 'synthetic'
    return generate_world(str(out), seed=0, **TINY)


def test_layout_and_label_values(tiny_world):
    root = tiny_world['root']
    for style in spec.STYLES:
        for split, n in (('train', 4), ('val', 2)):
            imgs = sorted(os.listdir(osp.join(root, style, 'img_dir', split)))
            anns = sorted(os.listdir(osp.join(root, style, 'ann_dir', split)))
            assert imgs == anns and len(imgs) == n
            for name in anns:
                lab = np.array(Image.open(osp.join(root, style, 'ann_dir',
                                                   split, name)))
                img = Image.open(osp.join(root, style, 'img_dir', split, name))
                assert img.mode == 'RGB' and img.size == (64, 64)
                assert lab.shape == (64, 64) and lab.dtype == np.uint8
                vals = set(np.unique(lab).tolist())
                assert vals <= set(range(len(spec.CLASSES))) | {255}
    meta = json.load(open(tiny_world['meta']))
    assert meta['classes'] == list(spec.CLASSES)
    assert len(spec.THING_CLASSES) >= 8 and len(spec.STUFF_CLASSES) >= 3
    assert len(spec.TARGET_STYLES) >= 3
    split = json.load(open(tiny_world['open_vocab_split']))
    assert set(split['seen']) | set(split['unseen']) == set(spec.CLASSES)
    assert not set(split['seen']) & set(split['unseen'])


def test_same_seed_same_bytes_other_seed_differs(tiny_world, tmp_path):
    again = generate_world(str(tmp_path / 'again'), seed=0, workers=2,
                           **TINY)
    other = generate_world(str(tmp_path / 'other'), seed=1, **TINY)
    d0 = tree_digest(tiny_world['root'])
    assert tree_digest(again['root']) == d0
    assert tree_digest(other['root']) != d0
    # Not only a few files: every segmentation image changes with the seed.
    a = osp.join(tiny_world['seg']['flat'], 'img_dir', 'train')
    b = osp.join(other['seg']['flat'], 'img_dir', 'train')
    for name in os.listdir(a):
        assert open(osp.join(a, name), 'rb').read() != open(
            osp.join(b, name), 'rb').read()


def test_cache_marker_and_atomic_write(tmp_path, monkeypatch):
    out = str(tmp_path / 'w')
    kw = dict(TINY, parts=('seg', ), styles=('flat', ))
    # The leftover of a killed run (its process is gone) is cleaned up.
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    os.makedirs(f'{out}.tmp-{dead.pid}/flat')
    generate_world(out, seed=0, **kw)
    assert not osp.exists(f'{out}.tmp-{dead.pid}')
    marker = osp.join(out, world_mod.MARKER)
    mtime = os.stat(marker).st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError('must not regenerate')

    monkeypatch.setattr(world_mod, '_generate', boom)
    generate_world(out, seed=0, **kw)  # cached: returns without generating
    assert os.stat(marker).st_mtime_ns == mtime
    # Other arguments regenerate; an interrupted run leaves neither a
    # world that looks complete nor temporary folders.
    with pytest.raises(AssertionError):
        generate_world(out, seed=1, **kw)
    fresh = str(tmp_path / 'fresh')
    with pytest.raises(AssertionError):
        generate_world(fresh, seed=0, **kw)
    assert not osp.exists(fresh)
    assert sorted(os.listdir(tmp_path)) == ['w']
    # Refuses to replace a folder it did not write.
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'x.txt').write_text('x')
    with pytest.raises(FileExistsError):
        generate_world(str(foreign), seed=0, **kw)


def test_rle_matches_pycocotools():
    mask_utils = pytest.importorskip('pycocotools.mask')
    rng = np.random.default_rng(0)
    masks = [np.zeros((7, 5), np.uint8), np.ones((6, 9), np.uint8),
             (rng.random((33, 40)) > 0.5).astype(np.uint8)]
    scene = sample_scene(rng, 64)
    masks += [(scene.inst == k + 1).astype(np.uint8)
              for k in range(len(scene.objects))]
    for m in masks:
        ref = mask_utils.encode(np.asfortranarray(m))
        ours = rle_encode(m)
        assert ours['counts'] == ref['counts'].decode()
        assert ours['size'] == list(ref['size'])
        np.testing.assert_array_equal(rle_decode(ours), m)


def test_coco_json_agrees_with_semantic_maps(tiny_world):
    coco_mod = pytest.importorskip('pycocotools.coco')
    for style in spec.STYLES:
        for split in ('train', 'val'):
            coco = coco_mod.COCO(tiny_world['coco'][style][split])
            cats = coco.loadCats(coco.getCatIds())
            assert [c['name'] for c in cats] == list(spec.THING_CLASSES)
            assert len(coco.getImgIds()) == (4 if split == 'train' else 2)
            n_anns = 0
            for img in coco.loadImgs(coco.getImgIds()):
                lab = np.array(Image.open(osp.join(
                    tiny_world['seg'][style], 'ann_dir', split,
                    img['file_name'])))
                union = np.zeros_like(lab, dtype=bool)
                for ann in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
                    m = coco.annToMask(ann).astype(bool)
                    cls = spec.THING_CLASSES[ann['category_id'] - 1]
                    assert m.any() and ann['iscrowd'] == 0
                    assert ann['area'] == m.sum()
                    assert (lab[m] == CLASS_ID[cls]).all()
                    assert not (union & m).any()  # instances are disjoint
                    x, y, w, h = ann['bbox']
                    ys, xs = np.nonzero(m)
                    assert (x, y, w, h) == (xs.min(), ys.min(),
                                            xs.max() - xs.min() + 1,
                                            ys.max() - ys.min() + 1)
                    union |= m
                    n_anns += 1
                # Every thing pixel belongs to exactly one instance.
                np.testing.assert_array_equal(
                    union, lab < len(spec.THING_CLASSES))
            assert n_anns > 0


def test_captions_and_classification(tiny_world):
    root = tiny_world['root']
    caps = tiny_world['captions']
    rows = [json.loads(line) for line in open(caps['clip_train'])]
    assert len(rows) == 6
    for r in rows:
        assert osp.isfile(osp.join(root, r['image']))
        assert Image.open(osp.join(root, r['image'])).size == (48, 48)
        assert isinstance(r['caption'], str) and r['caption']
        # Each thing class named in the caption is in the image.
        named = {c for c in spec.THING_CLASSES if f' {c}' in r['caption']}
        assert named <= set(r['classes'])
    seg_rows = [json.loads(line) for line in open(caps['seg']['fog']['val'])]
    assert [r['image'] for r in seg_rows] == [
        f'fog/img_dir/val/fog_val_{i:05d}.png' for i in range(2)]
    cls_rows = [json.loads(line)
                for line in open(tiny_world['classification']['labels'])]
    assert sorted(r['class'] for r in cls_rows) == sorted(spec.THING_CLASSES)
    for r in cls_rows:
        assert r['image'].startswith(f'classification/test/{r["class"]}/')
        assert spec.THING_CLASSES[r['label']] == r['class']
        assert osp.isfile(osp.join(root, r['image']))


def test_object_parts_are_drawn():
    """Every part an action maps to is drawn (visible) on its object."""
    for cls in spec.THING_CLASSES:
        obj = SceneObject(cls, 'red', 'large', 48, 0.3, False, (32, 40),
                          transform_shape(cls, 48, 0.3, False, (32, 40)))
        lay = sample_layout(np.random.default_rng(0), 64, clutter_p=0)
        scene = compose(lay, [obj])
        drawn = set(np.unique(scene.part[scene.inst == 1]).tolist())
        assert drawn == {PART_ID[p] for p in spec.OBJECT_PARTS[cls]}, cls
    for action, objs in spec.ACTIONS.items():
        for cls, part in objs.items():
            assert part in spec.OBJECT_PARTS[cls]


def test_occlusion_masks_reflect_visibility():
    rng = np.random.default_rng(3)
    seen_occlusion = False
    for _ in range(20):
        scene = sample_scene(rng, 64, num_objects=(3, 4))
        for k, full in enumerate(scene.full_masks):
            vis = scene.inst == k + 1
            assert not (vis & ~full).any()
            assert vis.sum() >= 0.5 * full.sum()  # placement constraint
            seen_occlusion |= bool((full & ~vis).any())
    assert seen_occlusion


def test_target_styles_shift_the_appearance():
    """Same scene, other style: the colours of every class move clearly
    (the domain gap) while the labels stay."""
    rng = np.random.default_rng(5)
    gaps = {s: [] for s in spec.TARGET_STYLES}
    for i in range(4):
        scene = sample_scene(rng, 64)
        src = render(scene, 'flat', np.random.default_rng(i)).astype(float)
        for s in spec.TARGET_STYLES:
            tgt = render(scene, s, np.random.default_rng(i)).astype(float)
            gaps[s].append(np.abs(tgt - src).mean() / 255)
    for s, g in gaps.items():
        assert np.mean(g) > 0.08, (s, g)


@pytest.mark.slow
def test_cli(tmp_path):
    out = tmp_path / 'cli'
    cmd = [sys.executable,
           osp.join(REPO, 'tools', 'dataset_converters',
                    'generate_synthetic_world.py'),
           '--out', str(out), '--seed', '3', '--size', '48', '--num-train',
           '2', '--num-val', '1', '--styles', 'flat', 'fog', '--parts',
           'seg', 'coco', 'open_vocab']
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert 'seg fog/train: 2 images' in res.stderr
    paths = json.loads(res.stdout)
    assert set(paths['seg']) == {'flat', 'fog'}
    assert len(os.listdir(out / 'fog' / 'img_dir' / 'train')) == 2
    assert osp.isfile(out / world_mod.MARKER)
    assert not osp.exists(out / 'mvtec')
