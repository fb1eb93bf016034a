"""The proxy CLIP (issue #25): the rich-caption corpus (words only where the
image shows them, determinism), the 16x16-token architecture and its config
and build driver (a couple of training iterations, no real training)."""
import hashlib
import json
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch

from clipdense.datasets.synthetic import spec
from clipdense.datasets.synthetic.rich_captions import (
    ANOMALOUS_ADJ, ANOMALOUS_SUFFIX, DEFECT_WORDS, NORMAL_ADJ, NORMAL_SUFFIX,
    STATE_WORDS, anomaly_caption, generate_rich_captions, relations)
from clipdense.datasets.synthetic.scene import (compose, sample_layout,
                                                sample_object)

SMALL = dict(size=64, num_train=60, num_val=4, progress=False)
ACTION_WORDS = ('hold', 'holding', 'cut', 'cutting', 'hit', 'hitting', 'kick',
                'kicking', 'drink', 'drinking', 'pour', 'pouring', 'stir',
                'stirring')
RELATION_WORDS = ('to the left of', 'to the right of', 'above', 'below',
                  'in front of')


def has(text, phrase):
    return re.search(r'(?<![\w-])' + re.escape(phrase) + r'(?![\w-])',
                     text) is not None


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp('rich') / 'corpus'
    paths = generate_rich_captions(str(root), seed=0, **SMALL)
    rows = [json.loads(line) for line in open(paths['clip_train'])]
    return root, paths, rows


def digest(root):
    h = hashlib.sha1()
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for name in sorted(files):
            p = osp.join(dirpath, name)
            h.update(osp.relpath(p, root).encode())
            h.update(open(p, 'rb').read())
    return h.hexdigest()


def test_corpus_has_every_kind_and_readable_images(corpus):
    root, paths, rows = corpus
    kinds = {r['kind'] for r in rows}
    assert kinds == {'scene', 'parts', 'anomaly', 'stuff'}
    from PIL import Image
    for r in rows[:5]:
        img = Image.open(osp.join(root, r['image']))
        assert img.size == (64, 64)


def test_state_words_only_on_anomaly_images(corpus):
    _, _, rows = corpus
    seen_normal = seen_defect = False
    for r in rows:
        cap = r['caption']
        states = [w for w in STATE_WORDS if has(cap, w)]
        if r['kind'] != 'anomaly':
            assert not states, (cap, states)
            continue
        assert has(cap, r['category'])
        normal = [w for w in NORMAL_ADJ + NORMAL_SUFFIX if has(cap, w)]
        if r['defect'] is None:
            seen_normal = True
            assert normal, cap
            assert set(states) <= set(normal), cap
        else:
            seen_defect = True
            assert not normal, cap
            adjs, withs = DEFECT_WORDS[r['defect']]
            assert any(has(cap, w) for w in adjs + withs + ANOMALOUS_ADJ +
                       ANOMALOUS_SUFFIX), cap
            # no other defect type's specific words
            others = {w for d, (a, s) in DEFECT_WORDS.items()
                      if d != r['defect'] for w in a + s} - set(adjs + withs)
            assert not [w for w in others if has(cap, w)], cap
    assert seen_normal and seen_defect


def test_every_visible_object_has_its_box(corpus):
    """The boxes ObjectCropCaption crops to: one per listed object, inside
    the image, around pixels that differ from the stuff around them."""
    import numpy as np
    from PIL import Image
    root, _, rows = corpus
    n = 0
    for r in rows:
        if r['kind'] == 'anomaly':
            assert 'boxes' not in r
            continue
        assert len(r['boxes']) == len(r['objects'])
        img = np.asarray(Image.open(osp.join(root, r['image'])))
        h, w = img.shape[:2]
        for x0, y0, x1, y1 in r['boxes']:
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, r
            n += 1
    assert n >= 5


def test_label_maps_name_the_records_classes(corpus):
    """Version 3: scene, parts and stuff images have a label map of
    spec.CLASSES indices whose classes are the record's, and each listed
    object's box holds pixels of its class."""
    from PIL import Image
    root, _, rows = corpus
    n = 0
    for r in rows:
        if r['kind'] == 'anomaly':
            continue  # test_anomaly_label_maps_are_the_defects
        assert 'seg_classes' not in r  # spec.CLASSES indices
        seg = np.asarray(Image.open(osp.join(root, r['seg_map'])))
        img = np.asarray(Image.open(osp.join(root, r['image'])))
        assert seg.shape == img.shape[:2] and seg.dtype == np.uint8
        ids = [int(i) for i in np.unique(seg) if i < len(spec.CLASSES)]
        assert [spec.CLASSES[i] for i in ids] == r['classes']
        assert set(np.unique(seg)) <= set(range(len(spec.CLASSES))) | {
            spec.IGNORE_INDEX}
        for name, (x0, y0, x1, y1) in zip(r['objects'], r['boxes']):
            assert (seg[y0:y1, x0:x1] == spec.CLASSES.index(name)).any()
        n += 1
    assert n >= 20


def test_anomaly_label_maps_are_the_defects(corpus):
    """Version 4: an anomaly image's label map is 1 on its rendered
    defect (the pixels that differ from the same draw rendered good) and 0
    elsewhere, with the two values named intact / damaged <category>."""
    from PIL import Image

    from clipdense.datasets.synthetic.anomaly import render_anomaly
    from clipdense.datasets.synthetic.rich_captions import _rng, SPLITS, _RICH
    root, _, rows = corpus
    good = bad = 0
    for i, r in enumerate(rows):
        if r['kind'] != 'anomaly':
            continue
        cat = r['category']
        assert r['seg_classes'] == [f'intact {cat}', f'damaged {cat}']
        seg = np.asarray(Image.open(osp.join(root, r['seg_map'])))
        img = np.asarray(Image.open(osp.join(root, r['image'])))
        assert seg.shape == img.shape[:2] and seg.dtype == np.uint8
        assert set(np.unique(seg)) <= {0, 1}
        if r['defect'] is None:
            assert not seg.any()
            good += 1
            continue
        assert seg.any() and not seg.all()
        # the generator's own draw for this record gives the same mask
        from clipdense.datasets.synthetic.rich_captions import DEFAULT_MIX
        rng = _rng(0, _RICH, SPLITS.index('train'), i)
        rng.choice(len(DEFAULT_MIX), p=np.asarray(DEFAULT_MIX))  # kind
        rng.integers(len(spec.STYLES))
        rng.integers(len(spec.ANOMALY_CATEGORIES))
        rng.random()  # good or not
        rng.integers(len(spec.ANOMALY_CATEGORIES[cat]))
        _, mask = render_anomaly(rng, img.shape[0], cat, r['defect'])
        assert ((mask > 0) == (seg == 1)).all()
        bad += 1
    assert good >= 2 and bad >= 2


def test_part_and_action_words_only_for_objects_that_have_them(corpus):
    _, _, rows = corpus
    parts_seen = 0
    for r in rows:
        cap = r['caption']
        if r['kind'] == 'anomaly':
            # the bottle mouth's broken rim is the only part word there
            extra = {'rim'} if r['category'] == 'bottle' else set()
            assert not [p for p in spec.PARTS if has(cap, p)
                        and p not in extra], cap
            assert not [a for a in ACTION_WORDS if has(cap, a)], cap
            continue
        objs = r['objects']
        allowed_parts = {p for o in objs for p in spec.OBJECT_PARTS[o]}
        used = {p for p in spec.PARTS if has(cap, p)}
        assert used <= allowed_parts, cap
        if r['kind'] != 'parts':
            assert not used, cap
            assert not [a for a in ACTION_WORDS if has(cap, a)], cap
            continue
        parts_seen += 1
        (obj, ) = objs
        afforded = {a for a, per in spec.ACTIONS.items() if obj in per}
        for a in ('hold', 'cut', 'hit', 'kick', 'pour', 'stir'):
            if has(cap, a) or has(cap, spec.ACTION_GERUNDS[a]):
                assert a in afforded, cap
        if has(cap, 'drink'):
            assert 'drink_with' in afforded, cap
        # the caption names what the object affords (its parts are visible)
        assert any(has(cap, spec.ACTION_GERUNDS[a]) or
                   has(cap, a.replace('_', ' ')) for a in afforded), cap
    assert parts_seen > 0


def test_relations_only_in_multi_object_scenes(corpus):
    _, _, rows = corpus
    with_rel = 0
    for r in rows:
        rel = [w for w in RELATION_WORDS if has(r['caption'], w)]
        if r['kind'] != 'scene' or len(r['objects']) < 2:
            assert not rel, r['caption']
        with_rel += bool(rel)
    assert with_rel > 0


def test_relations_follow_the_masks():
    S = 64
    lay = sample_layout(np.random.default_rng(0), S, clutter_p=0.0)
    rng = np.random.default_rng(1)
    left = sample_object(rng, S, 'ball', size_name='small', center=(12, 40))
    right = sample_object(rng, S, 'ball', size_name='small', center=(52, 40))
    rels = relations(compose(lay, [left, right]))
    assert (1, 'to the right of', 0) in rels
    assert all(r[1] != 'in front of' for r in rels)
    # overlapping: the later object is in front
    back = sample_object(rng, S, 'ball', size_name='large', center=(30, 40))
    front = sample_object(rng, S, 'cup', size_name='small', center=(34, 40))
    rels = relations(compose(lay, [back, front]))
    assert (1, 'in front of', 0) in rels


def test_anomaly_caption_good_vs_defect():
    rng = np.random.default_rng(0)
    good = [anomaly_caption(rng, 'wood', None, None) for _ in range(20)]
    bad = [anomaly_caption(rng, 'wood', 'scratch', np.ones((8, 8), np.uint8))
           for _ in range(20)]
    assert all('scratch' not in c for c in good)
    assert any('scratch' in c for c in bad)
    assert not any(has(c, w) for c in bad for w in NORMAL_ADJ + NORMAL_SUFFIX)


def test_determinism_and_cache(tmp_path, corpus):
    root, _, _ = corpus
    again = generate_rich_captions(str(tmp_path / 'b'), seed=0, **SMALL)
    assert digest(root) == digest(again['root'])
    other = generate_rich_captions(str(tmp_path / 'c'), seed=1, **SMALL)
    assert digest(root) != digest(other['root'])
    # a second call returns the cached corpus without rewriting it
    mtime = os.path.getmtime(again['clip_train'])
    generate_rich_captions(str(tmp_path / 'b'), seed=0, **SMALL)
    assert os.path.getmtime(again['clip_train']) == mtime


def test_bad_mix_is_refused(tmp_path):
    with pytest.raises(ValueError, match='mix'):
        generate_rich_captions(str(tmp_path / 'x'), mix=(1, 0, 0),
                               progress=False)


def test_proxy_arch_gives_16x16_dense_maps():
    from clipdense.models.backbones import OpenCLIPViT
    bb = OpenCLIPViT('clipdense-synth-vit8', out_indices=(-1, ),
                     pyramid=False, joint_outputs=('value', 'dense'))
    bb.eval()
    with torch.no_grad():
        *maps, joint = bb(torch.randn(1, 3, 128, 128))
    assert maps[-1].shape[-2:] == (16, 16)
    assert joint['value'].shape == (1, 128, 16, 16)
    assert joint['dense'].shape == (1, 128, 16, 16)
    # the quickstart's tiny CLIP is unchanged: 4x4 at 128 px
    from clipdense.models.backbones import OpenCLIPResNet
    rn = OpenCLIPResNet('clipdense-synth-rn', out_indices=(3, ),
                        joint_outputs=('value', ))
    with torch.no_grad():
        *_, j = rn.eval()(torch.randn(1, 3, 128, 128))
    assert j['value'].shape[-2:] == (4, 4)


def test_proxy_config_trains_a_few_iterations(tmp_path, capsys):
    from clipdense.apis import proxy_clip
    dt = proxy_clip.main(['--data-root', str(tmp_path / 'c'), '--num-train',
                          '8', '--num-val', '2', '--batch-size', '4',
                          '--time-iters', '2'])
    assert osp.isfile(tmp_path / 'c' / 'clip_train.jsonl')
    assert dt > 0
    assert 's/iter at batch 4' in capsys.readouterr().out


def test_proxy_training_is_deterministic_per_seed(tmp_path):
    """The proxy config trained twice with one seed gives the same weights,
    bit for bit; another --train-seed gives other weights. (Across machines
    the CPU kernels may differ: results/proxy_rebuild/README.md.)"""
    import argparse

    from mmengine.runner import Runner

    from clipdense.apis import proxy_clip
    corpus = generate_rich_captions(str(tmp_path / 'c'), seed=0, num_train=16,
                                    num_val=2, progress=False)
    states = []
    for run, seed in enumerate((None, None, 1)):
        args = argparse.Namespace(config=proxy_clip.PROXY_CONFIG, seed=0,
                                  train_seed=seed, epochs=2, batch_size=4)
        cfg = proxy_clip.proxy_cfg(args, corpus)
        cfg.work_dir = str(tmp_path / f'run{run}')
        runner = Runner.from_cfg(cfg)
        runner.train()
        states.append({k: v.detach().clone()
                       for k, v in runner.model.state_dict().items()})
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_proxy_config_overrides(corpus):
    import argparse

    from clipdense.apis import proxy_clip
    root, paths, _ = corpus
    args = argparse.Namespace(config=proxy_clip.PROXY_CONFIG, seed=3,
                              epochs=2, batch_size=8)
    cfg = proxy_clip.proxy_cfg(args, paths)
    assert cfg.model.model_name == 'clipdense-synth-vit8'
    assert cfg.randomness.seed == 3 and cfg.train_cfg.max_epochs == 2
    assert cfg.train_dataloader.dataset.data_root == str(root)
    assert cfg.train_dataloader.batch_size == 8
    assert [s['end'] for s in cfg.param_scheduler if s.get('by_epoch')] == [2]
    # --train-seed: another training seed on the corpus drawn with --seed
    args.train_seed = 5
    assert proxy_clip.proxy_cfg(args, paths).randomness.seed == 5
    assert proxy_clip.train_seed(args) == 5
    args.train_seed = None
    assert proxy_clip.train_seed(args) == 3


def test_rich_corpus_is_refused_over_foreign_folder_and_cleans_dead_temporaries(tmp_path):
    """The corpus is built through the world's marked-build mechanism: a
    non-empty folder without the corpus's marker is refused, and a temporary
    folder left by a killed run (dead pid) is removed before building."""
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'mine.txt').write_text('x')
    with pytest.raises(FileExistsError, match='not a rich-caption corpus'):
        generate_rich_captions(str(foreign), num_train=1, num_val=1,
                               progress=False)
    assert (foreign / 'mine.txt').read_text() == 'x'
    out = tmp_path / 'rich'
    dead = tmp_path / 'rich.tmp-999999999'
    dead.mkdir()
    generate_rich_captions(str(out), num_train=1, num_val=1, progress=False)
    assert not dead.exists()
    assert (out / '.clipdense_rich_captions.json').is_file()


def test_proxy_clip_adopts_a_finished_run_of_the_same_config(tmp_path):
    """``--from-run``: a tools/train.py run of the proxy config (here two
    epochs of 2 iterations on 8 images) is exported and stamped instead of retraining;
    a run with other settings is refused with the setting named."""
    import argparse

    from mmengine.runner import Runner

    from clipdense.apis import proxy_clip
    from clipdense.models.pretraining import export_open_clip_state_dict
    common = ['--data-root', str(tmp_path / 'c'), '--num-train', '8',
              '--num-val', '2', '--batch-size', '4', '--epochs', '2']
    corpus = generate_rich_captions(str(tmp_path / 'c'), seed=0, num_train=8,
                                    num_val=2, progress=False)
    args = argparse.Namespace(config=proxy_clip.PROXY_CONFIG, seed=0,
                              epochs=2, batch_size=4)
    cfg = proxy_clip.proxy_cfg(args, corpus)
    cfg.work_dir = str(tmp_path / 'run')
    runner = Runner.from_cfg(cfg)
    runner.train()
    trained = export_open_clip_state_dict(
        {'state_dict': runner.model.state_dict()})

    out = proxy_clip.main(common + ['--work-dir', str(tmp_path / 'w'),
                                    '--from-run', str(tmp_path / 'run')])
    got = torch.load(out, map_location='cpu')
    assert got.keys() == trained.keys()
    assert all(torch.equal(got[k], trained[k]) for k in got)
    stamp = json.load(open(tmp_path / 'w' / 'proxy_clip' / 'done.json'))
    assert stamp['adopted_run'] == str(tmp_path / 'run')
    # a second call is cached
    assert proxy_clip.main(common + ['--work-dir', str(tmp_path / 'w')]) == out

    with pytest.raises(ValueError, match='randomness'):
        proxy_clip.main(common + ['--work-dir', str(tmp_path / 'w2'),
                                  '--seed', '1',
                                  '--from-run', str(tmp_path / 'run')])
    assert not osp.exists(tmp_path / 'w2' / 'proxy_clip.pt')
    # a seed-0 run is not a --train-seed 1 proxy either
    with pytest.raises(ValueError, match='randomness'):
        proxy_clip.main(common + ['--work-dir', str(tmp_path / 'w2'),
                                  '--train-seed', '1',
                                  '--from-run', str(tmp_path / 'run')])
    assert not osp.exists(tmp_path / 'w2' / 'proxy_clip.pt')
    with pytest.raises(FileNotFoundError, match='last_checkpoint'):
        proxy_clip.main(common + ['--work-dir', str(tmp_path / 'w3'),
                                  '--from-run', str(tmp_path)])

    # the run's checkpoint is read without running its pickle: one holding
    # an object outside MMEngine's types is refused, nothing written
    import shutil

    from clipdense.fileio import UnsafeCheckpointError, safe_torch_load
    ckpt_name = osp.basename(open(tmp_path / 'run' / 'last_checkpoint')
                             .read().strip())
    for name, extra, err, word in (
            ('unsafe', dict(payload=_NotWeights()), UnsafeCheckpointError,
             'Refusing'),
            ('unfinished', dict(meta=dict(epoch=1)), ValueError,
             'not finished')):
        run = tmp_path / name
        shutil.copytree(tmp_path / 'run', run)
        ck = safe_torch_load(str(run / ckpt_name), map_location='cpu')
        ck.update(extra)
        torch.save(ck, run / ckpt_name)
        (run / 'last_checkpoint').write_text(str(run / ckpt_name))
        with pytest.raises(err, match=word):
            proxy_clip.main(common + ['--work-dir', str(tmp_path / f'w_{name}'),
                                      '--from-run', str(run)])
        assert not osp.exists(tmp_path / f'w_{name}' / 'proxy_clip.pt')


class _NotWeights:
    """An object a weights file should not hold."""
