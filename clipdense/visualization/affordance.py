"""Affordance heat maps of an image for free-text action prompts
(AffordanceCLIP), as arrays and as coloured overlays; the
``--task affordance`` branch of ``demo/image_demo.py``::

    python demo/image_demo.py IMG CONFIG [CKPT] --task affordance \\
        --prompt "hold;drink with" --out-file heat.png

Example::

    from clipdense.apis import init_model
    from clipdense.visualization.affordance import affordance_heatmaps
    model = init_model(CONFIG, CHECKPOINT)
    heats = affordance_heatmaps(model, 'mug.png', ['hold', 'drink with'])
    heats.shape  # (2, H, W), values in [0, 1]
"""
import copy
import os
import os.path as osp
from typing import List, Sequence, Union

import numpy as np

# loading/annotation steps of a test pipeline that an image array does not need
_SKIP = ('LoadImageFromFile', 'LoadImageFromNDArray', 'LoadAnnotations',
         'LoadAffordanceHeatmap', 'LoadReferringMask')


def parse_prompts(text: Union[str, Sequence[str], None]) -> List[str]:
    """Split ``"hold;cut"`` (or a list) into prompts; refuse empty ones.

    Prompts are separated by ``;`` or ``|`` (a comma inside one prompt
    separates synonyms whose embeddings are averaged: ``"hold, grasp"``).
    """
    if text is None:
        raise ValueError('no prompt: give --prompt "hold" (several: "hold;cut")')
    if isinstance(text, str):
        parts = [p.strip() for p in text.replace('|', ';').split(';')]
    else:
        parts = [str(p).strip() for p in text]
    if not parts or not any(parts):
        raise ValueError('the prompt is empty: give an action, e.g. --prompt "hold"')
    empty = [i for i, p in enumerate(parts) if not p]
    if empty:
        raise ValueError(f'prompt list {text!r} has empty prompts (positions {empty})')
    if len({p.lower() for p in parts}) != len(parts):
        raise ValueError(f'prompt list {text!r} repeats a prompt')
    return parts


def affordance_heatmaps(model, img, prompts: Sequence[str]) -> np.ndarray:
    """Heat maps of ``prompts`` on one image.

    Args:
        model: an :class:`AffordanceCLIP` from ``clipdense.apis.init_model``.
        img (str | ndarray): image path or BGR array.
        prompts (Sequence[str]): actions (any text).

    Returns:
        ndarray: ``(K, H, W)`` float32 heat maps at the image size (the
        head's sigmoid scores; cosines for the CLIP baselines).
    """
    import torch
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    from clipdense.fileio import load_image
    if not hasattr(model, 'predict_prompts'):
        raise TypeError(f'{type(model).__name__} is not an affordance model '
                        '(use a configs/affordanceclip/ config)')
    prompts = parse_prompts(list(prompts))
    cfg = model.cfg
    init_default_scope(cfg.get('default_scope', 'clipdense'))
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline
    pipeline = Compose([copy.deepcopy(t) for t in pipeline if t.get('type') not in _SKIP])
    arr = load_image(img)
    data = pipeline(dict(img=arr, img_path=img if isinstance(img, str) else None,
                         img_shape=arr.shape[:2], ori_shape=arr.shape[:2]))
    ds = data['data_samples']
    ds.set_metainfo({model.text_key: list(prompts)})
    with torch.no_grad():
        out = model.test_step(dict(inputs=[data['inputs']], data_samples=[ds]))[0]
    return out.pred_heatmap.data.float().cpu().numpy()


def draw_heatmap(img_bgr: np.ndarray, heat: np.ndarray, opacity: float = 0.5,
                 label: str = None) -> np.ndarray:
    """JET-coloured ``heat`` over the image, min-max normalised per map (as
    the AGD20K metrics see it), with an optional label."""
    import cv2
    h = np.asarray(heat, dtype=np.float32)
    if h.shape != img_bgr.shape[:2]:
        h = cv2.resize(h, (img_bgr.shape[1], img_bgr.shape[0]),
                       interpolation=cv2.INTER_LINEAR)
    h = (h - h.min()) / (h.max() - h.min() + 1e-12)
    color = cv2.applyColorMap((h * 255).round().astype(np.uint8), cv2.COLORMAP_JET)
    out = (img_bgr.astype(np.float32) * (1 - opacity) +
           color.astype(np.float32) * opacity).round().astype(np.uint8)
    if label:
        scale = max(0.3, min(out.shape[:2]) / 400.0)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        out[:th + base + 4, :min(out.shape[1], tw + 6)] //= 3
        cv2.putText(out, label, (3, th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out


def heatmap_panel(img_bgr: np.ndarray, heats: np.ndarray, prompts: Sequence[str],
                  opacity: float = 0.5) -> np.ndarray:
    """The image and one overlay per prompt, side by side."""
    tiles = [img_bgr] + [draw_heatmap(img_bgr, h, opacity, f'{p} (max {h.max():.2f})')
                         for h, p in zip(heats, prompts)]
    return np.concatenate(tiles, axis=1)


def run_affordance_task(args, jobs, *, build_model, iterate_jobs, save_image) -> int:
    """The ``--task affordance`` branch of ``demo/image_demo.py``: for each
    image write ``image | heat map per prompt`` (JET over the image, the
    prompt written in the corner) to its output path.

    Args:
        args: the demo's arguments (``prompt``, ``opacity``, ``out_mask``,
            ``config``, ``checkpoint``, ``device``, ``cfg_options``).
            ``--prompt "hold;drink with"``: prompts separated by ``;``.
        jobs (list): ``[(image path, output path)]``.
        build_model, iterate_jobs, save_image: the demo's helpers.

    Returns:
        int: exit status (0 all written, 1 some images failed). Bad
        arguments raise ``ValueError`` (the demo prints it, status 2).
    """
    from clipdense.fileio import load_image
    prompts = parse_prompts(getattr(args, 'prompt', None))
    opacity = float(getattr(args, 'opacity', 0.5))
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f'--opacity must be in [0, 1], got {opacity}')
    if len(jobs) == 1:
        load_image(jobs[0][0])  # a clear error for a non-image before building
    model = build_model(args)
    if not hasattr(model, 'predict_prompts'):
        raise ValueError(f'--task affordance needs an affordance model (a '
                         f'configs/affordanceclip/ config), got {type(model).__name__}')
    out_mask = getattr(args, 'out_mask', None)
    written = []

    def one(img_path, out_file):
        img = load_image(img_path)
        heats = affordance_heatmaps(model, img, prompts)
        panel = heatmap_panel(img, heats, prompts, opacity)
        save_image(out_file, panel)
        if out_mask and len(jobs) == 1:
            os.makedirs(osp.dirname(osp.abspath(out_mask)) or '.', exist_ok=True)
            np.save(out_mask, heats)
        written.append((out_file, heats, panel.shape))

    failures = iterate_jobs(jobs, one, desc='affordance maps')
    if len(jobs) == 1:
        out_file, heats, shape = written[0]
        peaks = ', '.join(f'{p!r} max {h.max():.2f}' for p, h in zip(prompts, heats))
        print(f'wrote {out_file} ({shape[1]}x{shape[0]}: image | one heat map per '
              f'prompt); {peaks}')
    else:
        print(f'wrote {len(written)} affordance panels'
              + (f'; {len(failures)} images skipped' if failures else ''))
    return 1 if failures else 0


__all__ = ['parse_prompts', 'affordance_heatmaps', 'draw_heatmap',
           'heatmap_panel', 'run_affordance_task']
