"""Loading and packing for anomaly datasets (MVTec AD, VisA).

Normal test images of MVTec AD and VisA have no mask file: their ground
truth is all zeros. ``LoadAnomalyAnnotations`` makes that mask at the image
size, so that every sample of a batch carries a ``gt_seg_map`` and the
usual mmseg transforms (``Resize`` etc.) treat normal and anomalous images
alike.
"""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import PackSegInputs

from clipdense.registry import TRANSFORMS

ANOMALY_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                     'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                     'reduce_zero_label', 'category', 'cls_name', 'anomaly',
                     'defect_type')


@TRANSFORMS.register_module()
class LoadAnomalyAnnotations(BaseTransform):
    """Load the binary defect mask of an anomaly sample, or make a zero mask.

    Reads ``seg_map_path`` (grayscale) when the sample has one and binarises
    it as ``value > threshold`` (default 0: MVTec masks are 0/255, VisA
    masks 0/255 or small per-defect ids; both become 0/1). When
    ``seg_map_path`` is None (a normal image) the mask is zeros of the
    loaded image's size. Must follow ``LoadImageFromFile``.

    Adds ``gt_seg_map`` (uint8 ``(H, W)``, 0/1) and registers it in
    ``seg_fields``.

    Args:
        threshold (int): pixels above it are anomalous.
        backend_args (dict, optional): file backend arguments (mmengine).
    """

    def __init__(self, threshold: int = 0, backend_args: Optional[dict] = None):
        super().__init__()
        self.threshold = threshold
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError('LoadAnomalyAnnotations must come after LoadImageFromFile '
                           '(the zero mask of a normal image takes the image size)')
        h, w = results['img'].shape[:2]
        path = results.get('seg_map_path')
        if path is None:
            if results.get('anomaly', 0):
                raise ValueError(f"{results.get('img_path')} is marked anomalous but has "
                                 'no mask (seg_map_path is None)')
            mask = np.zeros((h, w), dtype=np.uint8)
        else:
            import mmcv
            from mmengine import fileio
            raw = mmcv.imfrombytes(fileio.get(path, backend_args=self.backend_args),
                                   flag='unchanged', backend='cv2')
            if raw is None:
                raise ValueError(f'{path} is not a readable mask image')
            if raw.ndim == 3:
                raw = raw[..., 0]
            if raw.shape != (h, w):
                raise ValueError(f'mask {path} is {raw.shape[1]}x{raw.shape[0]} but its '
                                 f'image is {w}x{h}; masks must match their images')
            mask = (raw > self.threshold).astype(np.uint8)
        results['gt_seg_map'] = mask
        results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in results['seg_fields']:
            results['seg_fields'].append('gt_seg_map')
        return results

    def __repr__(self):
        return f'{type(self).__name__}(threshold={self.threshold})'


@TRANSFORMS.register_module()
class PILAnomalyResize(BaseTransform):
    """Resize an anomaly sample as AnoVL's torchvision pipeline does
    (hq-deng/AnoVL ``vl_test.py`` / ``vis_test.py``): the image with PIL's
    bilinear filter, which is antialiased when shrinking (mmcv's default
    cv2 resize is not), and the 0/1 defect mask as a 0/255 image with the
    same filter, then ``> 0.5`` of its ``[0, 1]`` value (mmcv resizes masks
    with nearest neighbours).

    Args:
        scale (int | tuple[int, int]): ``(w, h)`` output size, or an int:
            the short side (torchvision's ``Resize(int)``: the long side
            becomes ``int(scale * long / short)``), as AnoVL resizes VisA.
        mask_threshold (float): the binarisation threshold in ``[0, 1]``.

    Updates ``img``, ``gt_seg_map`` (if present), ``img_shape`` and
    ``scale_factor`` (``(w_scale, h_scale)``).
    """

    def __init__(self, scale, mask_threshold: float = 0.5):
        super().__init__()
        if isinstance(scale, int):
            if scale < 1:
                raise ValueError(f'scale must be positive, got {scale}')
        elif not (isinstance(scale, (tuple, list)) and len(scale) == 2
                  and all(isinstance(v, int) and v > 0 for v in scale)):
            raise ValueError(f'scale must be an int (short side) or (w, h), got {scale!r}')
        self.scale = scale if isinstance(scale, int) else tuple(scale)
        self.mask_threshold = float(mask_threshold)

    def _size(self, h: int, w: int):
        if isinstance(self.scale, tuple):
            return self.scale
        s = self.scale
        if w <= h:
            return s, int(s * h / w)
        return int(s * w / h), s

    def transform(self, results: dict) -> dict:
        from PIL import Image
        img = results['img']
        h, w = img.shape[:2]
        ow, oh = self._size(h, w)
        if img.ndim == 3 and img.shape[2] == 3:
            out = np.asarray(Image.fromarray(img).resize((ow, oh), Image.BILINEAR))
        else:
            chans = img[..., None] if img.ndim == 2 else img
            out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(chans[..., c]))
                                       .resize((ow, oh), Image.BILINEAR))
                            for c in range(chans.shape[2])], axis=-1)
            out = out[..., 0] if img.ndim == 2 else out
        results['img'] = out
        mask = results.get('gt_seg_map')
        if mask is not None:
            m = Image.fromarray((mask > 0).astype(np.uint8) * 255)
            m = np.asarray(m.resize((ow, oh), Image.BILINEAR)).astype(np.float32) / 255.0
            results['gt_seg_map'] = (m > self.mask_threshold).astype(np.uint8)
        results['img_shape'] = (oh, ow)
        results['scale_factor'] = (ow / w, oh / h)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(scale={self.scale}, mask_threshold={self.mask_threshold})'


@TRANSFORMS.register_module()
class PackAnomalyInputs(PackSegInputs):
    """mmseg's ``PackSegInputs`` keeping the anomaly metainfo the detectors
    and :class:`~clipdense.evaluation.AnomalyMetric` read (``category``,
    ``cls_name`` for prompts, ``anomaly`` 0/1, ``defect_type``)."""

    def __init__(self, meta_keys: Sequence[str] = ANOMALY_META_KEYS):
        super().__init__(meta_keys=tuple(meta_keys))
