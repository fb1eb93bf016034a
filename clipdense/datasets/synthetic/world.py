"""``generate_world``: write the whole synthetic world in the real datasets'
on-disk formats.

Layout under ``out_dir`` (``S`` = style, ``sp`` = split)::

    meta.json                       classes, palette, styles, parts, actions
    open_vocab_split.json           {"seen": [...], "unseen": [...], ...}
    <S>/img_dir/<sp>/<S>_<sp>_00000.png    mmseg layout, one folder per style
    <S>/ann_dir/<sp>/<S>_<sp>_00000.png    uint8 label ids 0..K-1, 255 ignore
    <S>/annotations/instances_<sp>.json    COCO (things), file_name relative
                                           to <S>/img_dir/<sp>/
    captions/clip_<sp>.jsonl        {"image", "caption", ...} for CLIP training
    captions/images/<sp>/*.png
    captions/seg_<S>_<sp>.jsonl     captions of the segmentation images
    classification/test/<class>/*.png      held-out single objects
    classification/test.jsonl       {"image", "label", "class"}
    mvtec/<cat>/train/good/000.png  MVTec AD tree
    mvtec/<cat>/test/{good,<defect>}/000.png
    mvtec/<cat>/ground_truth/<defect>/000_mask.png   (0/255)
    refer/images/refer_00000.png    RefCOCO-style referring segmentation
    refer/refsynth/instances.json   COCO instances of objects and parts
    refer/refsynth/refs.json        refs (RefCOCO 'refs(unc).p' fields)
    agd20k/Seen/testset/egocentric/<action>/<object>/<object>_000000.png
    agd20k/Seen/testset/GT/<action>/<object>/<object>_000000.png
    .clipdense_world.json           completion marker (arguments, version)

All image paths in the JSON-lines files are relative to ``out_dir``.
The world is written into a sibling temporary folder and renamed into place
when complete, so an interrupted run never leaves a world that looks
complete; calling again with the same arguments returns at once.
"""
import json
import os
import os.path as osp
import shutil
import sys
import time

import numpy as np

from . import spec
from .affordance import agd_sample, refer_sample
from .anomaly import render_anomaly
from .captions import present_classes, scene_caption, single_caption
from .render import render
from .scene import sample_scene, single_object_scene
from .writers import (mask_bbox, rle_encode, save_png, write_json,
                      write_jsonl)

ALL_PARTS = ('seg', 'coco', 'captions', 'classification', 'anomaly',
             'affordance', 'open_vocab')
SPLITS = ('train', 'val')
MARKER = '.clipdense_world.json'
# Seed-stream ids: every image draws from its own generator seeded by
# (seed, stream, ...indices), so outputs do not depend on the order or the
# number of worker processes.
_SEG, _CLIP, _CLS, _ANOM, _REFER, _AGD = 1, 2, 3, 4, 5, 6


def _rng(*key):
    return np.random.default_rng([int(k) for k in key])


# ---------------------------------------------------------------------------
# Per-image jobs (module-level so they can run in worker processes).
def _seg_job(job):
    root, seed, size, style, split, i = job
    rng = _rng(seed, _SEG, spec.STYLES.index(style), SPLITS.index(split), i)
    scene = sample_scene(rng, size)
    img = render(scene, style, rng)
    name = f'{style}_{split}_{i:05d}.png'
    save_png(osp.join(root, style, 'img_dir', split, name), img)
    save_png(osp.join(root, style, 'ann_dir', split, name), scene.label)
    anns = []
    for k, obj in enumerate(scene.objects):
        m = scene.inst == k + 1
        if not m.any():
            continue
        anns.append({'category_id': spec.THING_CLASSES.index(obj.cls) + 1,
                     'segmentation': rle_encode(m), 'area': int(m.sum()),
                     'bbox': mask_bbox(m), 'iscrowd': 0,
                     'colour': obj.colour, 'size': obj.size})
    return {'file_name': name, 'anns': anns,
            'caption': scene_caption(rng, scene, style),
            'classes': present_classes(scene)}


def _clip_job(job):
    root, seed, size, split, i, styles, single_p = job
    rng = _rng(seed, _CLIP, SPLITS.index(split), i)
    style = styles[int(rng.integers(len(styles)))]
    if rng.random() < single_p:
        cls = spec.THING_CLASSES[int(rng.integers(len(spec.THING_CLASSES)))]
        scene = single_object_scene(rng, size, cls)
        img = render(scene, style, rng)
        caption = single_caption(rng, scene.objects[0], style)
    else:
        scene = sample_scene(rng, size, num_objects=(1, 3))
        img = render(scene, style, rng)
        caption = scene_caption(rng, scene, style)
    rel = f'captions/images/{split}/clip_{split}_{i:05d}.png'
    save_png(osp.join(root, rel), img)
    return {'image': rel, 'caption': caption, 'style': style,
            'classes': present_classes(scene)}


def _cls_job(job):
    root, seed, size, ci, i, style = job
    cls = spec.THING_CLASSES[ci]
    rng = _rng(seed, _CLS, ci, i)
    scene = single_object_scene(rng, size, cls)
    rel = f'classification/test/{cls}/{cls}_{i:04d}.png'
    save_png(osp.join(root, rel), render(scene, style, rng))
    return {'image': rel, 'label': ci, 'class': cls, 'style': style}


def _anomaly_job(job):
    root, seed, size, cat, kind, i = job
    cats = list(spec.ANOMALY_CATEGORIES)
    kinds = ['train', 'good'] + list(spec.ANOMALY_CATEGORIES[cat])
    rng = _rng(seed, _ANOM, cats.index(cat), kinds.index(kind), i)
    defect = None if kind in ('train', 'good') else kind
    img, mask = render_anomaly(rng, size, cat, defect)
    base = osp.join(root, 'mvtec', cat)
    if kind == 'train':
        save_png(osp.join(base, 'train', 'good', f'{i:03d}.png'), img)
    else:
        save_png(osp.join(base, 'test', kind, f'{i:03d}.png'), img)
        if defect is not None:
            save_png(osp.join(base, 'ground_truth', kind, f'{i:03d}_mask.png'),
                     mask)
    return None


def _refer_job(job):
    root, seed, size, split, i, n_train = job
    rng = _rng(seed, _REFER, SPLITS.index(split), i)
    scene, items = refer_sample(rng, size)
    img = render(scene, spec.SOURCE_STYLE, rng)
    idx = i if split == 'train' else n_train + i
    name = f'refer_{idx:05d}.png'
    save_png(osp.join(root, 'refer', 'images', name), img)
    objs = []
    for k, obj in enumerate(scene.objects):
        m = scene.inst == k + 1
        objs.append(None if not m.any() else {
            'category_id': spec.THING_CLASSES.index(obj.cls) + 1,
            'segmentation': rle_encode(m), 'area': int(m.sum()),
            'bbox': mask_bbox(m), 'iscrowd': 0, 'colour': obj.colour,
            'size': obj.size})
    refs = []
    for it in items:
        if it['kind'] == 'part':
            m = it['mask']
            ann = {'category_id': 100 + spec.PARTS.index(it['part']) + 1,
                   'segmentation': rle_encode(m), 'area': int(m.sum()),
                   'bbox': mask_bbox(m), 'iscrowd': 0, 'part': it['part']}
        else:
            ann = None
        refs.append({'obj': it['obj'], 'kind': it['kind'],
                     'part': it['part'], 'part_ann': ann,
                     'sentences': it['sentences']})
    return {'file_name': name, 'split': split, 'objects': objs,
            'refs': refs, 'size': size}


def _agd_job(job):
    root, seed, size, action, cls, j = job
    rng = _rng(seed, _AGD, list(spec.ACTIONS).index(action),
               spec.THING_CLASSES.index(cls), j)
    scene, _, heat = agd_sample(rng, size, action, cls)
    img = render(scene, spec.SOURCE_STYLE, rng)
    name = f'{cls}_{j:06d}.png'
    base = osp.join(root, 'agd20k', 'Seen', 'testset')
    save_png(osp.join(base, 'egocentric', action, cls, name), img)
    save_png(osp.join(base, 'GT', action, cls, name), heat)
    return None


# ---------------------------------------------------------------------------
class _Runner:
    """Runs jobs in order (optionally in worker processes) and reports
    progress."""

    def __init__(self, workers, log):
        self.workers = workers
        self.log = log
        self.pool = None
        if workers > 1:
            import multiprocessing as mp
            ctx = mp.get_context('fork' if 'fork' in
                                 mp.get_all_start_methods() else 'spawn')
            self.pool = ctx.Pool(workers)

    def map(self, fn, jobs, label):
        t0 = time.perf_counter()
        if self.pool is not None:
            out = self.pool.map(fn, jobs, chunksize=max(1, len(jobs) // (
                4 * self.workers)))
        else:
            out = [fn(j) for j in jobs]
        if self.log:
            self.log(f'[synthetic world] {label}: {len(jobs)} images '
                     f'({time.perf_counter() - t0:.1f}s)')
        return out

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def _coco(records, split, style):
    images, annotations = [], []
    ann_id = 1
    for img_id, rec in enumerate(records, start=1):
        images.append({'id': img_id, 'file_name': rec['file_name'],
                       'height': rec['size'], 'width': rec['size']})
        for a in rec['anns']:
            annotations.append(dict(a, id=ann_id, image_id=img_id))
            ann_id += 1
    categories = [{'id': i + 1, 'name': c, 'supercategory': 'thing'}
                  for i, c in enumerate(spec.THING_CLASSES)]
    return {'info': {'description': f'clipdense synthetic world, style '
                     f'{style}, split {split}',
                     'version': str(spec.GENERATOR_VERSION)},
            'licenses': [], 'images': images, 'annotations': annotations,
            'categories': categories}


def _write_refer(root, records):
    images, annotations, refs = [], [], []
    ann_id, ref_id, sent_id = 1, 0, 0
    for img_id, rec in enumerate(records, start=1):
        images.append({'id': img_id, 'file_name': rec['file_name'],
                       'height': rec['size'], 'width': rec['size']})
        obj_ann = {}
        for k, o in enumerate(rec['objects']):
            if o is None:
                continue
            annotations.append(dict(o, id=ann_id, image_id=img_id))
            obj_ann[k] = ann_id
            ann_id += 1
        for r in rec['refs']:
            if r['kind'] == 'part':
                annotations.append(dict(r['part_ann'], id=ann_id,
                                        image_id=img_id,
                                        object_id=obj_ann[r['obj']]))
                target, cat = ann_id, r['part_ann']['category_id']
                ann_id += 1
            else:
                target = obj_ann[r['obj']]
                cat = rec['objects'][r['obj']]['category_id']
            sents = []
            for s in r['sentences']:
                sents.append({'sent_id': sent_id, 'raw': s, 'sent': s,
                              'tokens': s.split()})
                sent_id += 1
            refs.append({'ref_id': ref_id, 'ann_id': target,
                         'image_id': img_id, 'split': rec['split'],
                         'category_id': cat, 'file_name': rec['file_name'],
                         'sentences': sents,
                         'sent_ids': [s['sent_id'] for s in sents],
                         'kind': r['kind'], 'part': r['part'],
                         'object_ann_id': obj_ann[r['obj']]})
            ref_id += 1
    categories = [{'id': i + 1, 'name': c, 'supercategory': 'thing'}
                  for i, c in enumerate(spec.THING_CLASSES)]
    categories += [{'id': 100 + i + 1, 'name': p, 'supercategory': 'part'}
                   for i, p in enumerate(spec.PARTS)]
    d = osp.join(root, 'refer', 'refsynth')
    write_json(osp.join(d, 'instances.json'), {
        'info': {'description': 'clipdense synthetic referring '
                 'segmentation (objects and parts)'},
        'licenses': [], 'images': images, 'annotations': annotations,
        'categories': categories})
    write_json(osp.join(d, 'refs.json'), refs)


def world_paths(out_dir, parts=ALL_PARTS, styles=spec.STYLES):
    """The paths ``generate_world`` returns (without generating)."""
    r = osp.abspath(out_dir)
    parts = _normalise_parts(parts)
    paths = {'root': r, 'meta': osp.join(r, 'meta.json')}
    if 'seg' in parts:
        paths['seg'] = {s: osp.join(r, s) for s in styles}
    if 'coco' in parts:
        paths['coco'] = {s: {sp: osp.join(r, s, 'annotations',
                                          f'instances_{sp}.json')
                             for sp in SPLITS} for s in styles}
    if 'captions' in parts:
        caps = {f'clip_{sp}': osp.join(r, 'captions', f'clip_{sp}.jsonl')
                for sp in SPLITS}
        if 'seg' in parts:
            caps['seg'] = {s: {sp: osp.join(r, 'captions',
                                            f'seg_{s}_{sp}.jsonl')
                               for sp in SPLITS} for s in styles}
        paths['captions'] = caps
    if 'classification' in parts:
        paths['classification'] = {
            'root': osp.join(r, 'classification', 'test'),
            'labels': osp.join(r, 'classification', 'test.jsonl')}
    if 'anomaly' in parts:
        paths['anomaly'] = osp.join(r, 'mvtec')
    if 'affordance' in parts:
        paths['refer'] = {
            'root': osp.join(r, 'refer'),
            'images': osp.join(r, 'refer', 'images'),
            'instances': osp.join(r, 'refer', 'refsynth', 'instances.json'),
            'refs': osp.join(r, 'refer', 'refsynth', 'refs.json')}
        paths['agd'] = osp.join(r, 'agd20k')
    if 'open_vocab' in parts:
        paths['open_vocab_split'] = osp.join(r, 'open_vocab_split.json')
    return paths


def _normalise_parts(parts):
    parts = tuple(parts)
    unknown = set(parts) - set(ALL_PARTS)
    if unknown:
        raise ValueError(f'unknown parts {sorted(unknown)}; choose from '
                         f'{ALL_PARTS}')
    if 'coco' in parts and 'seg' not in parts:
        parts = parts + ('seg', )  # COCO annotates the segmentation images
    return tuple(p for p in ALL_PARTS if p in parts)


def _print(msg):
    print(msg, file=sys.stderr, flush=True)


def generate_world(out_dir, *, seed=0, size=128, num_train=200, num_val=50,
                   styles=spec.STYLES, parts=ALL_PARTS, clip_size=None,
                   num_clip_train=4000, num_clip_val=200,
                   clip_single_p=0.8, num_cls_per_class=20,
                   num_anomaly_train=30, num_anomaly_good=10,
                   num_anomaly_defect=8, num_refer_train=400,
                   num_refer_val=100, num_agd_per_pair=6, workers=1,
                   progress=True, force=False):
    """Generate (or reuse) the synthetic world under ``out_dir``.

    Args:
        out_dir (str): destination folder; created atomically.
        seed (int): master seed; the same arguments give identical bytes.
        size (int): side of the segmentation, refer, AGD and anomaly
            images.
        num_train, num_val (int): segmentation images per style and split.
        styles (sequence[str]): styles to render (source first); subset of
            :data:`spec.STYLES`.
        parts (sequence[str]): any of :data:`ALL_PARTS` ('coco' implies
            'seg').
        clip_size (int, optional): side of the caption (CLIP training) and
            classification images. 64 by default: a tiny CLIP trains on the
            CPU at that size, and it keeps the default world small (about
            4x fewer bytes and seconds than 128); None means ``size``.
        num_clip_train, num_clip_val (int): caption images; a fraction
            ``clip_single_p`` shows one object, the rest 1-3 objects, in
            styles drawn uniformly from ``styles``.
        num_cls_per_class (int): held-out single-object test images per
            thing class (source style).
        num_anomaly_train, num_anomaly_good, num_anomaly_defect (int):
            MVTec images per category (train/good, test/good) and per
            defect type.
        num_refer_train, num_refer_val (int): referring-segmentation images.
        num_agd_per_pair (int): AGD test images per (action, object) pair.
        workers (int): worker processes (1 = in process). Outputs do not
            depend on it.
        progress (bool): print one line per step to stderr.
        force (bool): regenerate even when a matching world exists.

    Returns:
        dict: paths, see :func:`world_paths`.
    """
    styles = tuple(styles)
    if not styles or set(styles) - set(spec.STYLES):
        raise ValueError(f'styles must be a non-empty subset of {spec.STYLES}')
    parts = _normalise_parts(parts)
    clip_size = clip_size or size
    args = {'seed': seed, 'size': size, 'num_train': num_train,
            'num_val': num_val, 'styles': list(styles), 'parts': list(parts),
            'clip_size': clip_size, 'num_clip_train': num_clip_train,
            'num_clip_val': num_clip_val, 'clip_single_p': clip_single_p,
            'num_cls_per_class': num_cls_per_class,
            'num_anomaly_train': num_anomaly_train,
            'num_anomaly_good': num_anomaly_good,
            'num_anomaly_defect': num_anomaly_defect,
            'num_refer_train': num_refer_train,
            'num_refer_val': num_refer_val,
            'num_agd_per_pair': num_agd_per_pair}
    marker = {'generator_version': spec.GENERATOR_VERSION, 'args': args}
    out_dir = osp.abspath(out_dir)
    paths = world_paths(out_dir, parts, styles)
    build_marked(out_dir, marker, lambda tmp, runner: _generate(tmp, args, runner),
                 label='synthetic world', what='a synthetic world',
                 workers=workers, progress=progress, force=force)
    return paths


def build_marked(out_dir, marker, fill, *, label, what, workers=0,
                 progress=True, force=False, marker_name=MARKER):
    """Build a generated folder once: nothing to do when ``out_dir``'s marker
    file equals ``marker``; otherwise ``fill(tmp, runner)`` writes into a
    temporary sibling folder, the marker is written last and the folder is
    moved into place, so a killed run never leaves a half-written
    ``out_dir`` (temporaries of dead runs are removed first). A non-empty
    ``out_dir`` without a marker is refused. Returns True when it built."""
    log = _print if progress else None
    marker_path = osp.join(out_dir, marker_name)
    if not force and _marker_matches(marker_path, marker):
        if log:
            log(f'[{label}] up to date: {out_dir}')
        return False
    if osp.exists(out_dir) and not osp.exists(marker_path) and os.listdir(
            out_dir):
        raise FileExistsError(
            f'{out_dir} exists, is not empty and is not {what} (no marker); '
            'choose another output folder or remove it')
    _remove_stale_tmp(out_dir)
    tmp = f'{out_dir}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    t0 = time.perf_counter()
    runner = _Runner(workers, log)
    try:
        fill(tmp, runner)
        write_json(osp.join(tmp, marker_name), marker)
    except BaseException:
        runner.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    runner.close()
    _install(tmp, out_dir, marker, force, marker_name)
    if log:
        log(f'[{label}] wrote {out_dir} in {time.perf_counter() - t0:.1f}s')
    return True


def _remove_stale_tmp(out_dir):
    """Remove temporary folders of killed runs (their process is gone)."""
    import glob
    for path in glob.glob(glob.escape(out_dir) + '.tmp-*'):
        try:
            pid = int(path.rsplit('-', 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, PermissionError):
            pass


def _marker_matches(marker_path, marker):
    try:
        with open(marker_path) as f:
            return json.load(f) == marker
    except (OSError, ValueError):
        return False


def _install(tmp, out_dir, marker, force, marker_name=MARKER):
    """Move the finished world in place. Several processes may generate the
    same world at once (e.g. one per rank): the first one to finish wins and
    the others discard their copy."""
    marker_path = osp.join(out_dir, marker_name)
    if not force and _marker_matches(marker_path, marker):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = None
    if osp.exists(out_dir):
        old = f'{out_dir}.old-{os.getpid()}'
        os.rename(out_dir, old)
    try:
        os.makedirs(osp.dirname(out_dir) or '.', exist_ok=True)
        os.rename(tmp, out_dir)
    except OSError:
        if not _marker_matches(marker_path, marker):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _generate(root, a, runner):
    seed, size = a['seed'], a['size']
    parts, styles = a['parts'], a['styles']
    write_json(osp.join(root, 'meta.json'), spec.metainfo())
    if 'open_vocab' in parts:
        write_json(osp.join(root, 'open_vocab_split.json'), {
            'seen': list(spec.SEEN_CLASSES),
            'unseen': list(spec.UNSEEN_CLASSES),
            'seen_ids': [spec.CLASSES.index(c) for c in spec.SEEN_CLASSES],
            'unseen_ids': [spec.CLASSES.index(c)
                           for c in spec.UNSEEN_CLASSES],
            'classes': list(spec.CLASSES)})
    if 'seg' in parts:
        for style in styles:
            for split in SPLITS:
                n = a['num_train'] if split == 'train' else a['num_val']
                jobs = [(root, seed, size, style, split, i) for i in range(n)]
                recs = runner.map(_seg_job, jobs, f'seg {style}/{split}')
                for r in recs:
                    r['size'] = size
                # mmseg's BaseSegDataset needs the folders even when empty.
                for sub in ('img_dir', 'ann_dir'):
                    os.makedirs(osp.join(root, style, sub, split),
                                exist_ok=True)
                if 'coco' in parts:
                    write_json(osp.join(root, style, 'annotations',
                                        f'instances_{split}.json'),
                               _coco(recs, split, style))
                if 'captions' in parts:
                    write_jsonl(
                        osp.join(root, 'captions',
                                 f'seg_{style}_{split}.jsonl'),
                        [{'image': f'{style}/img_dir/{split}/{r["file_name"]}',
                          'caption': r['caption'], 'classes': r['classes'],
                          'style': style} for r in recs])
    if 'captions' in parts:
        for split in SPLITS:
            n = a['num_clip_train'] if split == 'train' else a['num_clip_val']
            jobs = [(root, seed, a['clip_size'], split, i, tuple(styles),
                     a['clip_single_p']) for i in range(n)]
            recs = runner.map(_clip_job, jobs, f'captions/{split}')
            write_jsonl(osp.join(root, 'captions', f'clip_{split}.jsonl'),
                        recs)
    if 'classification' in parts:
        jobs = [(root, seed, a['clip_size'], ci, i, styles[0])
                for ci in range(len(spec.THING_CLASSES))
                for i in range(a['num_cls_per_class'])]
        recs = runner.map(_cls_job, jobs, 'classification/test')
        write_jsonl(osp.join(root, 'classification', 'test.jsonl'), recs)
    if 'anomaly' in parts:
        jobs = []
        for cat, defects in spec.ANOMALY_CATEGORIES.items():
            for kind, n in ([('train', a['num_anomaly_train']),
                             ('good', a['num_anomaly_good'])] +
                            [(d, a['num_anomaly_defect']) for d in defects]):
                jobs += [(root, seed, size, cat, kind, i) for i in range(n)]
        runner.map(_anomaly_job, jobs, 'anomaly (MVTec AD tree)')
    if 'affordance' in parts:
        jobs = [(root, seed, size, sp, i, a['num_refer_train'])
                for sp in SPLITS
                for i in range(a['num_refer_train'] if sp == 'train'
                               else a['num_refer_val'])]
        recs = runner.map(_refer_job, jobs, 'affordance/refer')
        _write_refer(root, recs)
        jobs = [(root, seed, size, action, cls, j)
                for action, objs in spec.ACTIONS.items() for cls in objs
                for j in range(a['num_agd_per_pair'])]
        runner.map(_agd_job, jobs, 'affordance/AGD20K test tree')
