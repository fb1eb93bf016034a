"""Open-vocabulary segmentation of your own images with your own class names.

    python demo/image_demo.py demo/demo.png \\
        configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py \\
        --vocabulary "a ball,a spoon,under the sky,on the grass,on a road" \\
        --out-file out.png --device cpu
    python demo/image_demo.py photos/ CONFIG --vocabulary "sofa|couch,cat,floor" \\
        --out-dir photos_seg --heatmaps

IMG is an image file or a folder (its images, sorted; --recursive for
sub-folders; a progress bar is shown). Each image gets an overlay of the
same size with a legend of the classes present (--out-file for one image,
<out-dir>/<sub-folders>/<name>.png for a folder, where images whose names
differ only in the extension keep it: cat.jpg -> cat.jpg.png, cat.png ->
cat.png.png, so no output overwrites another); optionally the label map (--out-mask)
and per-class score heat maps (--heatmaps: <overlay>_heatmaps/<k>_<class>.png).

Vocabulary syntax: commas separate classes, "|" separates synonyms of one
class, whose text embeddings are averaged ("sofa|couch,cat" is two classes).
--vocabulary-file reads one class per line (same "|" synonyms, "#" comments).
Empty, repeated (also across synonyms) or over-long names (longer than the
CLIP text context) are refused with a message. Grayscale, RGBA and 16-bit
images are converted; files that are not images are refused (skipped, with a
message, in a folder); images above the window size of a whole-image config
run with a sliding window (bounded memory), images above --max-megapixels are
refused. Exit status: 0 all done, 1 some images of a folder failed, 2 bad
input (nothing written).

``demo/demo.png`` is validation image flat_val_00002 of the synthetic world
(``generate_world(seed=0)``, 128 px).

Tasks: --task selects the function of TASKS that handles the images
(``semseg``, the default, is the open-vocabulary segmentation above). A task
is ``fn(args, jobs) -> exit status`` with ``jobs`` a list of
(image path, overlay path); add a task by writing such a function (reuse
build_model, iterate_jobs, save_image) and registering it in TASKS.
"""
import argparse
import os
import os.path as osp
import re
import sys

import numpy as np

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp',
                    '.pgm', '.ppm', '.pnm')


class DemoError(ValueError):
    """A bad argument or input, reported as ``error: ...`` with exit status 2."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Vocabulary: "a,b|c" = two classes, the second with synonyms b and c.')
    p.add_argument('img', help='image file or folder of images')
    p.add_argument('config', help='model config')
    p.add_argument('checkpoint', nargs='?', default=None, help='checkpoint (optional)')
    p.add_argument('--task', default='semseg', choices=sorted(TASKS),
                   help='what to do with the images (default: semseg)')
    p.add_argument('--class-name', default=None,
                   help='--task anomaly: object name for the prompts (default: '
                   'the class folder of the MVTec AD layout)')
    p.add_argument('--prompt', default=None,
                   help='--task affordance: action prompts separated by ";", '
                   'e.g. "hold;drink with"')
    p.add_argument('--vocabulary', default=None,
                   help='class names: commas separate classes, "|" synonyms of one '
                   'class, e.g. "sofa|couch,cat,grass" (default: the config\'s)')
    p.add_argument('--vocabulary-file', default=None,
                   help='text file, one class per line ("|" synonyms, # comments)')
    p.add_argument('--out-file', default='out.png',
                   help='overlay of a single image (PNG)')
    p.add_argument('--out-dir', default=None,
                   help='output folder (needed when IMG is a folder)')
    p.add_argument('--out-mask', default=None,
                   help='also write the label map (PNG of class indices, uint8, '
                   'uint16 for > 255 classes): a file for one image, a folder '
                   'for a folder')
    p.add_argument('--heatmaps', nargs='?', const='present', default=None,
                   choices=('present', 'all'),
                   help='also write a score heat map per class, for the classes '
                   'present in the prediction (default) or all')
    p.add_argument('--recursive', action='store_true',
                   help='with a folder: also the images in its sub-folders')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    p.add_argument('--opacity', type=float, default=0.5,
                   help='mask opacity in [0, 1]')
    p.add_argument('--max-megapixels', type=float, default=64.0,
                   help='refuse larger images (default 64)')
    p.add_argument('--cfg-options', nargs='+', default=None,
                   help='config overrides key=value (mmengine DictAction); a key '
                   'that does not exist is refused with the closest one')
    p.add_argument('--allow-partial-load', action='store_true',
                   help='use a checkpoint that does not fit the model (other '
                   'keys or shapes; the rest keeps its initial weights); '
                   'refused by default')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='allow full unpickling of the checkpoint (only for files '
                   'you trust; sets CLIPDENSE_TRUST_CHECKPOINTS=1)')
    return p


# ---------------------------------------------------------------------------
# vocabulary
def _norm(name):
    return re.sub(r'\s+', ' ', name.strip().lower())


def parse_vocabulary_entries(entries, source='the vocabulary'):
    """Class entries with "|" synonyms -> the vocabulary (synonyms joined by
    ", ", the text encoder's synonym format). Refuses empty, repeated (also
    across synonyms) names and names containing a comma."""
    if not entries:
        raise DemoError(f'{source} is empty: give class names, e.g. '
                        '--vocabulary "cat,dog,grass"')
    vocab, seen, dups = [], {}, []
    for i, entry in enumerate(entries):
        syns = [s.strip() for s in entry.split('|')]
        if not entry.strip() or not all(syns):
            raise DemoError(f'{source} has an empty name in class #{i} ({entry!r})')
        for s in syns:
            if ',' in s:
                raise DemoError(f'{source}: {s!r} contains a comma; separate '
                                'synonyms with "|"')
            key = _norm(s)
            if key in seen:
                dups.append(s)
            seen.setdefault(key, i)
        vocab.append(', '.join(syns))
    if dups:
        raise DemoError(f'{source} repeats class names: {sorted(set(dups))}; each '
                        'name may appear once (synonyms of one class: "sofa|couch")')
    return vocab


def parse_vocabulary_arg(text):
    """Split "a,b|c" into vocabulary entries (None -> None)."""
    if text is None:
        return None
    entries = [n.strip() for n in text.split(',')]
    if not any(entries):
        raise DemoError('the vocabulary is empty: give class names, e.g. '
                        '--vocabulary "cat,dog,grass"')
    return parse_vocabulary_entries(entries, f'the vocabulary {text!r}')


def read_vocabulary_file(path):
    if not osp.isfile(path):
        raise DemoError(f'vocabulary file not found: {path}')
    with open(path, encoding='utf-8') as f:
        lines = [ln.split('#', 1)[0].strip() for ln in f]
    return parse_vocabulary_entries([ln for ln in lines if ln], path)


def display_name(entry):
    """'sofa, couch' -> 'sofa|couch' (how the CLI writes synonyms)."""
    return '|'.join(s.strip() for s in str(entry).split(','))


# ---------------------------------------------------------------------------
# inputs and outputs
def collect_jobs(args):
    """``[(image, overlay path)]`` for a file or a folder of images."""
    src = args.img
    if osp.isdir(src):
        if not args.out_dir:
            raise DemoError(f'{src} is a folder: give --out-dir for the outputs')
        out_root = osp.abspath(args.out_dir)
        images = []
        for root, dirs, files in os.walk(src):
            dirs[:] = sorted(d for d in dirs
                             if osp.abspath(osp.join(root, d)) != out_root)
            if osp.abspath(root) == out_root:
                continue
            images += [osp.join(root, f) for f in sorted(files)
                       if f.lower().endswith(IMAGE_EXTENSIONS)]
            if not args.recursive:
                break
        if not images:
            raise DemoError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {src}')
        rels = unique_output_names([osp.relpath(p, src) for p in images])
        return [(path, osp.join(args.out_dir, rel))
                for path, rel in zip(images, rels)]
    if not osp.exists(src):
        raise DemoError(f'image not found: {src}')
    return [(src, args.out_dir and osp.join(
        args.out_dir, osp.splitext(osp.basename(src))[0] + '.png') or args.out_file)]


def unique_output_names(rel_paths):
    """Overlay names for images at ``rel_paths`` (relative to the input
    folder): the sub-folders are kept and the extension becomes ``.png``
    (``sub/cat.jpg`` -> ``sub/cat.png``). Images of one folder whose names
    differ only in the extension (or in letter case, which some file systems
    ignore) keep their whole name instead: ``cat.jpg`` -> ``cat.jpg.png``,
    ``cat.png`` -> ``cat.png.png``. A name still taken (e.g. by an input
    literally called ``cat.jpg.png``) gets ``_1``, ``_2``... So no two
    images of a run write the same file."""
    def key(p):
        return osp.normcase(p).casefold()
    stems = {}
    for rel in rel_paths:
        stems.setdefault(key(osp.splitext(rel)[0]), []).append(rel)
    out, used = [], set()
    for rel in rel_paths:
        stem = osp.splitext(rel)[0]
        name = stem + '.png' if len(stems[key(stem)]) == 1 else rel + '.png'
        base, n = name[:-4], 1
        while key(name) in used:
            name = f'{base}_{n}.png'
            n += 1
        used.add(key(name))
        out.append(name)
    return out


def check_image_file(path, max_pixels):
    """Refuse a file above --max-megapixels (from its header) or that is
    not an image, without decoding it when its header is readable."""
    from clipdense.apis.inference import (check_image_pixels, image_file_size,
                                          load_image)
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    try:
        check_image_pixels(path, max_pixels, limit_name='--max-megapixels')
    except ValueError as e:
        raise DemoError(str(e)) from None
    if image_file_size(path) is None:
        load_image(path)  # not a header PIL reads: decoding decides


def save_image(path, img):
    import cv2
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    if not cv2.imwrite(path, img):
        raise DemoError(f'could not write {path} (use a .png name in a writable folder)')


def mask_path(args, job, n_jobs):
    if not args.out_mask:
        return None
    if n_jobs == 1 and not osp.isdir(args.img):
        return args.out_mask
    rel = osp.relpath(job[1], args.out_dir)
    return osp.join(args.out_mask, rel)


def build_model(args):
    """``init_model`` from the CLI arguments (config, checkpoint, device,
    --cfg-options)."""
    from clipdense.apis import init_model
    cfg_options = None
    if args.cfg_options:
        from mmengine.config import DictAction
        ns = argparse.Namespace()
        DictAction(option_strings=[], dest='o')(None, ns, args.cfg_options)
        cfg_options = ns.o
    if getattr(args, 'trust_checkpoint', False):
        os.environ['CLIPDENSE_TRUST_CHECKPOINTS'] = '1'
    return init_model(args.config, args.checkpoint, device=args.device,
                      cfg_options=cfg_options,
                      allow_partial_load=getattr(args, 'allow_partial_load', False)
                      or None)


def iterate_jobs(jobs, fn, desc='images'):
    """Run ``fn(image, out_path)`` on every job with a progress bar (for more
    than one image). Returns the failures ``[(image, message)]``; a single
    image's error is raised instead."""
    if len(jobs) == 1:
        fn(*jobs[0])
        return []
    from tqdm import tqdm
    failures = []
    bar = tqdm(jobs, desc=desc, unit='img', file=sys.stderr)
    for img, out in bar:
        try:
            fn(img, out)
        except (ValueError, FileNotFoundError) as e:
            failures.append((img, str(e)))
            bar.write(f'skipped {img}: {e}', file=sys.stderr)
    return failures


# ---------------------------------------------------------------------------
# drawing
def draw_overlay(img_bgr, seg, classes, palette, opacity=0.5):
    """Blend the label map over the image and draw a legend of the classes
    present (top-left, inside the image; the output keeps the image size)."""
    import cv2
    h, w = seg.shape
    pal = np.asarray(palette, dtype=np.uint8)[:, ::-1]  # RGB -> BGR
    color = pal[np.clip(seg, 0, len(pal) - 1)]
    out = img_bgr.astype(np.float32) * (1 - opacity) + color.astype(np.float32) * opacity
    out = out.round().astype(np.uint8)
    present = [int(c) for c in np.unique(seg) if 0 <= c < len(classes)]
    # legend: one row per present class, scaled to the image
    scale = max(0.25, min(h, w) / 400.0)
    thick = 1
    (tw, th), base = cv2.getTextSize('Ag', cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    row = th + base + 2
    box = row - 2
    y = 2
    for c in present:
        if y + row > h:
            break
        name = display_name(classes[c])
        (nw, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        x1 = min(w - 1, 2 + box + 3 + nw + 2)
        # dark backing for legibility
        out[y:y + row - 1, 1:x1] = (out[y:y + row - 1, 1:x1] * 0.3).astype(np.uint8)
        cv2.rectangle(out, (2, y), (2 + box - 1, y + box - 1),
                      tuple(int(v) for v in pal[c]), thickness=-1)
        cv2.putText(out, name, (2 + box + 3, y + th), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), thick, cv2.LINE_AA)
        y += row
    return out, present


def class_scores(result):
    """``(K, H, W)`` class probabilities of a result: the softmax over
    classes of ``seg_logits`` (MaskCLIPHead returns log-probabilities, so
    this gives back its probabilities)."""
    import torch
    logits = getattr(result, 'seg_logits', None)
    if logits is None:
        raise DemoError('this model returns no seg_logits: no heat maps')
    return torch.softmax(logits.data.float(), dim=0).cpu().numpy()


def draw_heatmap(img_bgr, score, title):
    """JET colour map of one class's scores ``(H, W)`` in [0, 1] over the
    image, with the class name and its maximum score."""
    import cv2
    heat = cv2.applyColorMap((np.clip(score, 0, 1) * 255).astype(np.uint8),
                             cv2.COLORMAP_JET)
    out = (img_bgr.astype(np.float32) * 0.4 + heat.astype(np.float32) * 0.6)
    out = out.round().astype(np.uint8)
    h, w = score.shape
    scale = max(0.25, min(h, w) / 400.0)
    text = f'{title} (max {float(score.max()):.2f})'
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    out[0:th + base + 4, 0:min(w, tw + 4)] //= 3
    cv2.putText(out, text, (2, th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return out


def heatmap_paths(overlay_path, classes, indices):
    stem = osp.splitext(overlay_path)[0] + '_heatmaps'
    width = len(str(max(len(classes) - 1, 0)))
    out = []
    for k in indices:
        safe = re.sub(r'[^A-Za-z0-9]+', '_', display_name(classes[k])).strip('_')
        out.append(osp.join(stem, f'{k:0{width}d}_{safe or "class"}.png'))
    return out


# ---------------------------------------------------------------------------
# tasks
def run_semseg(args, jobs):
    """Open-vocabulary semantic segmentation (the default task)."""
    from clipdense.apis import inference_model, load_image
    if args.vocabulary is not None and args.vocabulary_file is not None:
        raise DemoError('give --vocabulary or --vocabulary-file, not both')
    if args.vocabulary_file is not None:
        vocabulary = read_vocabulary_file(args.vocabulary_file)
    else:
        vocabulary = parse_vocabulary_arg(args.vocabulary)
    if not 0.0 <= args.opacity <= 1.0:
        raise DemoError(f'--opacity must be in [0, 1], got {args.opacity}')
    if not args.max_megapixels > 0:
        raise DemoError(f'--max-megapixels must be > 0, got {args.max_megapixels}')
    max_pixels = int(args.max_megapixels * 1e6)
    if len(jobs) == 1:
        # a clear error for a non-image or a too large one before building
        check_image_file(jobs[0][0], max_pixels)
    model = build_model(args)
    if vocabulary is not None:
        from clipdense.apis.inference import set_model_vocabulary
        set_model_vocabulary(model, vocabulary)  # once, before the images
    classes = model.dataset_meta.get('classes')
    if not classes:
        raise DemoError(
            f'{args.config} has a fixed class list but names no classes (its '
            'test dataset has none and no checkpoint meta gives them): pass the '
            'checkpoint written by tools/train.py (its meta holds the class '
            'names), or use an open-vocabulary config with --vocabulary')
    palette = model.dataset_meta['palette']
    written = []

    def one(img_path, out_file):
        check_image_file(img_path, max_pixels)  # header first
        img = load_image(img_path)
        # long vocabularies: labels only (no full-size scores) unless heat maps
        result = inference_model(model, img, max_pixels=max_pixels,
                                 labels_only=False if args.heatmaps else None)
        seg = result.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
        overlay, present = draw_overlay(img, seg, classes, palette, args.opacity)
        save_image(out_file, overlay)
        mpath = mask_path(args, (img_path, out_file), len(jobs))
        if mpath:
            save_image(mpath, seg.astype(np.uint8 if len(classes) <= 256 else np.uint16))
        if args.heatmaps:
            scores = class_scores(result)
            idx = present if args.heatmaps == 'present' else range(len(classes))
            for k, path in zip(idx, heatmap_paths(out_file, classes, idx)):
                save_image(path, draw_heatmap(img, scores[k], display_name(classes[k])))
        written.append((out_file, [display_name(classes[c]) for c in present],
                        overlay.shape))

    failures = iterate_jobs(jobs, one, desc='segmenting')
    if len(jobs) == 1:
        out_file, names, shape = written[0]
        print(f'wrote {out_file} ({shape[1]}x{shape[0]}); classes present: {names}')
    else:
        n_files = len({osp.abspath(o) for o, _, _ in written})  # distinct files
        print(f'wrote {n_files} overlays to {args.out_dir}'
              + (f'; {len(failures)} images skipped' if failures else ''))
    return 1 if failures else 0


def run_anomaly(args, jobs):
    """Zero-shot anomaly heat maps (AnoVL / WinCLIP configs): image | heat map
    per image; the prompts' object name is --class-name or the MVTec AD class
    folder (see clipdense.visualization.anomaly.run_anomaly_task)."""
    from clipdense.visualization.anomaly import run_anomaly_task
    return run_anomaly_task(args, jobs, build_model=build_model,
                            iterate_jobs=iterate_jobs, save_image=save_image)


def run_affordance(args, jobs):
    """Affordance heat maps (AffordanceCLIP configs): image | one heat map
    per --prompt action (see clipdense.visualization.affordance)."""
    from clipdense.visualization.affordance import run_affordance_task
    return run_affordance_task(args, jobs, build_model=build_model,
                               iterate_jobs=iterate_jobs, save_image=save_image)


#: task name -> fn(args, jobs) -> exit status (see the module docstring)
TASKS = {'semseg': run_semseg, 'anomaly': run_anomaly, 'affordance': run_affordance}


def main(argv=None):
    args = parse_args().parse_args(argv)
    try:
        jobs = collect_jobs(args)
        return TASKS[args.task](args, jobs)
    except (DemoError, ValueError, FileNotFoundError, TypeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001
        from clipdense.fileio import UnsafeCheckpointError
        if not isinstance(e, UnsafeCheckpointError) or \
                os.environ.get('CLIPDENSE_DEBUG', '').strip() not in ('', '0'):
            raise
        print(f'error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
