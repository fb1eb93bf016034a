"""Heat maps of anomaly predictions: ``tools/test.py --show-dir`` (through
:class:`AnomalyLocalVisualizer`) and ``demo/image_demo.py --task anomaly``
(through :func:`run_anomaly_task`)."""
import os
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.visualization import Visualizer

from clipdense.registry import VISUALIZERS


def normalize_map(amap: np.ndarray, vmin: Optional[float] = None,
                  vmax: Optional[float] = None) -> np.ndarray:
    """Scale a map to [0, 1] (min-max of the map unless given). AnoVL's
    probabilities sit close to 0.5 (no temperature), so a per-image
    min-max scaling is what makes them visible."""
    a = np.asarray(amap, dtype=np.float32)
    lo = float(a.min()) if vmin is None else float(vmin)
    hi = float(a.max()) if vmax is None else float(vmax)
    if hi - lo < 1e-12:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0, 1)


def draw_anomaly_heatmap(img_rgb: np.ndarray, amap: np.ndarray,
                         gt: Optional[np.ndarray] = None, alpha: float = 0.5,
                         score: Optional[float] = None,
                         vmin: Optional[float] = None,
                         vmax: Optional[float] = None) -> np.ndarray:
    """Blend a JET heat map of ``amap`` over an RGB image; draw the ground
    truth's outline in white and the image score in the corner.

    Args:
        img_rgb (ndarray): ``(H, W, 3)`` uint8 RGB.
        amap (ndarray): ``(h, w)`` anomaly map (resized to the image).
        gt (ndarray, optional): ``(h', w')`` 0/1 mask.
        alpha (float): heat-map opacity.
        score (float, optional): image score to print.
        vmin, vmax (float, optional): fixed colour range (default: the
            map's own min/max).

    Returns:
        ndarray: ``(H, W, 3)`` uint8 RGB.
    """
    import cv2
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    img = np.asarray(img_rgb)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'expected an (H, W, 3) image, got {img.shape}')
    h, w = img.shape[:2]
    a = np.asarray(amap, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f'expected a 2-D anomaly map, got shape {a.shape}')
    if a.shape != (h, w):
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap((normalize_map(a, vmin, vmax) * 255).astype(np.uint8),
                             cv2.COLORMAP_JET)[..., ::-1]
    out = (img.astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha)
    out = np.ascontiguousarray(out.round().astype(np.uint8))
    if gt is not None:
        m = (np.asarray(gt) > 0).astype(np.uint8)
        if m.shape != (h, w):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    if score is not None:
        scale = max(0.3, min(h, w) / 500.0)
        cv2.putText(out, f'{score:.3f}', (3, int(14 * scale / 0.4)),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


@VISUALIZERS.register_module()
class AnomalyLocalVisualizer(Visualizer):
    """Visualizer for anomaly detectors: the image, its heat map with the
    ground-truth outline, side by side. Works with mmseg's
    ``SegVisualizationHook`` (``tools/test.py --show-dir DIR`` writes the
    pictures under ``DIR/<timestamp>/vis_data/vis_image/``).

    Args:
        alpha (float): heat-map opacity.
        fixed_range (tuple, optional): colour range ``(vmin, vmax)`` shared
            by all images (e.g. ``(0, 1)``); default per-image min-max.
        **kwargs: ``mmengine.visualization.Visualizer`` arguments
            (``name``, ``vis_backends``, ``save_dir``).
    """

    def __init__(self, name: str = 'visualizer', alpha: float = 0.5,
                 fixed_range: Optional[tuple] = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = float(alpha)
        self.fixed_range = fixed_range
        self.dataset_meta = {}

    @staticmethod
    def _unique_name(name: str, data_sample) -> str:
        """MVTec AD / VisA reuse file names across classes and defect types
        (``000.png``) and the hook passes ``<mode>_<basename>``: prefix the
        class and defect type so that no picture overwrites another."""
        meta = data_sample.metainfo
        if 'category' not in meta or 'img_path' not in meta:
            return name
        stem = osp.splitext(osp.basename(meta['img_path']))[0]
        mode = name.split('_', 1)[0] if '_' in name else name
        return f"{mode}_{meta['category']}_{meta.get('defect_type', 'x')}_{stem}"

    def add_datasample(self, name: str, image: np.ndarray, data_sample=None,
                       draw_gt: bool = True, draw_pred: bool = True,
                       show: bool = False, wait_time: float = 0,
                       out_file: Optional[str] = None, step: int = 0,
                       **kwargs) -> None:
        """Draw ``image`` (RGB) with the sample's ``pred_anomaly_map``."""
        if data_sample is None or 'pred_anomaly_map' not in data_sample:
            raise ValueError('AnomalyLocalVisualizer needs data samples with '
                             'pred_anomaly_map (from an anomaly detector)')
        name = self._unique_name(name, data_sample)
        amap = data_sample.pred_anomaly_map.data[0].float().cpu().numpy()
        gt = None
        if draw_gt and 'gt_sem_seg' in data_sample:
            gt = data_sample.gt_sem_seg.data[0].cpu().numpy()
        score = data_sample.get('pred_score', None)
        score = float(score) if score is not None else None
        vmin, vmax = self.fixed_range if self.fixed_range else (None, None)
        heat = draw_anomaly_heatmap(image, amap, gt, self.alpha, score, vmin, vmax)
        drawn = np.concatenate([np.asarray(image, dtype=np.uint8), heat], axis=1)
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            import mmcv
            mmcv.imwrite(drawn[..., ::-1], out_file)
        else:
            self.add_image(name, drawn, step)


def anomaly_heatmap(model, img, *, class_name: str, img_path: Optional[str] = None,
                    opacity: float = 0.5):
    """Run an anomaly detector (from ``init_model``) on one BGR image.

    Args:
        model: an AnoVL / WinCLIP detector built by ``init_model``.
        img (ndarray): ``(H, W, 3)`` uint8 BGR (``clipdense.apis.load_image``).
        class_name (str): the object name for the prompts.
        img_path (str, optional): recorded in the data sample.
        opacity (float): heat-map opacity.

    Returns:
        tuple: ``(picture, amap, score)``: BGR ``(H, 2W, 3)`` image | heat
        map, the ``(H, W)`` map and the image score.
    """
    import torch
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    if not hasattr(model, 'class_names'):
        raise ValueError(f'{type(model).__name__} is not an anomaly detector '
                         '(AnoVL/WinCLIP config); use --task semseg for it')
    if not class_name or not str(class_name).strip():
        raise ValueError('no object name for the prompts: give --class-name (e.g. '
                         '--class-name bottle) or use the MVTec AD folder layout '
                         '<class>/test/<defect>/<image>')
    model.class_name = str(class_name).strip()
    init_default_scope(model.cfg.get('default_scope', 'clipdense'))
    steps = [t for t in model.cfg.test_dataloader.dataset.pipeline
             if t['type'] not in ('LoadImageFromFile', 'LoadAnomalyAnnotations')]
    data = Compose(steps)(dict(img=img, img_path=img_path, img_shape=img.shape[:2],
                               ori_shape=img.shape[:2]))
    batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
    with torch.no_grad():
        result = model.test_step(batch)[0]
    import cv2
    amap = result.pred_anomaly_map.data[0].float().cpu().numpy()
    amap = cv2.resize(amap, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    score = float(result.pred_score)
    heat = draw_anomaly_heatmap(img[..., ::-1], amap, None, opacity, score)
    picture = np.concatenate([img, np.ascontiguousarray(heat[..., ::-1])], axis=1)
    return picture, amap, score


def run_anomaly_task(args, jobs, *, build_model, iterate_jobs, save_image) -> int:
    """The ``--task anomaly`` branch of ``demo/image_demo.py``: for each
    image write ``image | heat map`` (JET, per-image min-max, image score in
    the corner) to its output path.

    The prompts' object name is ``--class-name``, else the class folder of
    the MVTec AD layout (``<class>/test/<defect>/x.png``).

    Args:
        args: the demo's arguments (``config``, ``checkpoint``, ``device``,
            ``opacity``, ``class_name``, ``cfg_options``).
        jobs (list): ``[(image path, output path)]``.
        build_model, iterate_jobs, save_image: the demo's helpers.

    Returns:
        int: exit status (0 all written, 1 some images failed).
    """
    from clipdense.fileio import load_image
    if not 0.0 <= args.opacity <= 1.0:
        raise ValueError(f'--opacity must be in [0, 1], got {args.opacity}')
    fixed = getattr(args, 'class_name', None)
    if not fixed:
        missing = [p for p, _ in jobs if guess_class_name(p) is None]
        if missing:
            raise ValueError(f'no object name for {missing[0]}: give --class-name (e.g. '
                             '--class-name bottle) or use the MVTec AD folder layout '
                             '<class>/test/<defect>/<image>')
    if len(jobs) == 1:
        load_image(jobs[0][0])  # a clear error for a non-image before building
    model = build_model(args)
    written = []

    def one(img_path, out_file):
        img = load_image(img_path)
        name = fixed or guess_class_name(img_path)
        picture, _, score = anomaly_heatmap(model, img, class_name=name,
                                            img_path=img_path, opacity=args.opacity)
        save_image(out_file, picture)
        written.append((out_file, name, score, picture.shape))

    failures = iterate_jobs(jobs, one, desc='anomaly maps')
    if len(jobs) == 1:
        out_file, name, score, shape = written[0]
        print(f'wrote {out_file} ({shape[1]}x{shape[0]}: image | anomaly heat map); '
              f'class {name!r}; image anomaly score {score:.4f}')
    else:
        print(f'wrote {len(written)} anomaly heat maps to {args.out_dir}'
              + (f'; {len(failures)} images skipped' if failures else ''))
    return 1 if failures else 0


def guess_class_name(img_path: str) -> Optional[str]:
    """The class of an image in the MVTec AD layout
    (``<class>/test/<defect>/name.png``), else None."""
    parts = osp.normpath(osp.abspath(img_path)).split(os.sep)
    if len(parts) >= 4 and parts[-3] in ('test', 'train'):
        return parts[-4].replace('_', ' ')
    return None
