"""Sliding-window inference that runs several windows per forward pass.

mmseg's ``EncoderDecoder.slide_inference`` runs one window at a time: on a
1024x2048 Cityscapes image with 512 windows and stride 341 that is 18
forward passes of batch 1, each too small to keep a CPU's cores (or a GPU)
busy. :class:`BatchedSlideMixin` cuts all windows first (in mmseg's order and
geometry: every window has the crop size, the last row/column is shifted
back inside the image), runs them through ``encode_decode`` in chunks of
``test_cfg.slide_batch_size`` windows, and accumulates the logits exactly as
mmseg does. Memory is bounded by the chunk, not by the number of windows.

mmseg's loop also pads every window's logits to the full image before
adding them (``F.pad(crop_logits, ...)``), so its cost grows with windows x
pixels, i.e. with the square of the image size: a 12-megapixel photo took
30 times as long as a 3-megapixel one. Here each window is added into its
own box, so the cost grows linearly with the pixels, also with
``slide_batch_size`` 1 (absent), which runs one window per pass and gives
mmseg's logits. :func:`apply_inference_options` with
``batched_slide=True`` (``init_model``, ``tools/test.py``) uses this class
for every mmseg ``EncoderDecoder``; a config opts in to several windows per
pass with ``test_cfg=dict(mode='slide', crop_size=..., stride=...,
slide_batch_size=8)``.

An image with at least ``test_cfg.slide_progress`` windows (default
:data:`SLIDE_PROGRESS_WINDOWS`; 0 or False: never) shows a progress bar of
its windows on stderr.
"""
import sys
from typing import List

import torch
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from torch import Tensor

from clipdense.registry import MODELS

from .labels_only import LabelsOnlyMixin

#: an image with this many sliding windows or more shows a progress bar
SLIDE_PROGRESS_WINDOWS = 100


def slide_windows(h_img: int, w_img: int, crop, stride) -> List[tuple]:
    """Window boxes ``(y1, y2, x1, x2)`` in mmseg's slide order.

    Args:
        h_img, w_img (int): image size.
        crop (tuple[int, int]): window (h, w).
        stride (tuple[int, int]): step (h, w).
    """
    h_crop, w_crop = crop
    h_stride, w_stride = stride
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    boxes = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2 = min(h_idx * h_stride + h_crop, h_img)
            x2 = min(w_idx * w_stride + w_crop, w_img)
            boxes.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return boxes


class BatchedSlideMixin:
    """Adds batched sliding-window inference to an mmseg segmentor (any
    class with ``encode_decode``, ``out_channels`` and ``test_cfg``)."""

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window logits, ``slide_batch_size`` windows per forward.

        Args:
            inputs (Tensor): (N, 3, H, W) images.
            batch_img_metas (list[dict]): their meta information.

        Returns:
            Tensor: (N, out_channels, H, W) logits, averaged where windows
            overlap (as mmseg).
        """
        chunk = self.test_cfg.get('slide_batch_size', None)
        chunk = 1 if chunk is None else int(chunk)
        if chunk < 1:
            raise ValueError(
                f'test_cfg.slide_batch_size must be >= 1, got {chunk}')
        n, _, h_img, w_img = inputs.shape
        boxes = slide_windows(h_img, w_img, self.test_cfg.crop_size,
                              self.test_cfg.stride)
        preds = inputs.new_zeros((n, self.out_channels, h_img, w_img))
        count = inputs.new_zeros((n, 1, h_img, w_img))
        original_shape = batch_img_metas[0].get('img_shape')
        bar = self._slide_progress(len(boxes), h_img, w_img)
        try:
            # windows of several boxes x N images per pass; all windows
            # have one size (mmseg shifts the last ones back inside)
            per_pass = max(1, chunk // n)
            for start in range(0, len(boxes), per_pass):
                group = boxes[start:start + per_pass]
                crops = torch.cat(
                    [inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in group])
                metas = [dict(m, img_shape=crops.shape[2:])
                         for _ in group for m in batch_img_metas]
                batch_img_metas[0]['img_shape'] = crops.shape[2:]
                logits = self.encode_decode(crops, metas)
                for i, (y1, y2, x1, x2) in enumerate(group):
                    # into the window's box only (mmseg pads to the image)
                    preds[:, :, y1:y2, x1:x2] += logits[i * n:(i + 1) * n]
                    count[:, :, y1:y2, x1:x2] += 1
                if bar is not None:
                    bar.update(len(group))
        finally:
            if bar is not None:
                bar.close()
            if original_shape is not None:
                batch_img_metas[0]['img_shape'] = original_shape
        assert (count == 0).sum() == 0
        return preds.div_(count)

    def _slide_progress(self, n_windows: int, h: int, w: int):
        """A tqdm bar on stderr for an image with many windows, else None."""
        at_least = self.test_cfg.get('slide_progress', SLIDE_PROGRESS_WINDOWS)
        if not at_least or n_windows < int(at_least):
            return None
        from tqdm import tqdm
        return tqdm(total=n_windows, unit='window', file=sys.stderr,
                    desc=f'sliding windows ({w}x{h})', mininterval=1.0,
                    leave=False)


@MODELS.register_module()
class SlideBatchEncoderDecoder(LabelsOnlyMixin, BatchedSlideMixin, EncoderDecoder):
    """mmseg's ``EncoderDecoder`` with batched sliding-window inference
    (``test_cfg.slide_batch_size``) and label-only whole-image prediction
    (``test_cfg.labels_only``, :mod:`.labels_only`); identical otherwise."""


#: test_cfg options that need the mixins of :class:`SlideBatchEncoderDecoder`
FAST_INFERENCE_KEYS = {'slide_batch_size': BatchedSlideMixin,
                       'labels_only': LabelsOnlyMixin}


def apply_inference_options(model_cfg, batched_slide: bool = False) -> None:
    """Make ``test_cfg.slide_batch_size`` / ``test_cfg.labels_only`` take
    effect, in place: mmseg's ``EncoderDecoder`` becomes
    :class:`SlideBatchEncoderDecoder` (the same model otherwise); a
    segmentor without the matching mixin is refused, so an option is never
    silently ignored. With ``batched_slide`` every mmseg ``EncoderDecoder``
    becomes :class:`SlideBatchEncoderDecoder` (sliding-window cost linear in
    the pixels, progress for large images; the same logits). Called by
    ``init_model`` and ``tools/test.py`` (both with ``batched_slide=True``)."""
    test_cfg = model_cfg.get('test_cfg') or {}
    wanted = [k for k in FAST_INFERENCE_KEYS
              if test_cfg.get(k) not in (None, False)]
    kind = model_cfg.get('type')
    if kind in ('EncoderDecoder', 'mmseg.EncoderDecoder') and \
            (wanted or batched_slide):
        model_cfg['type'] = 'SlideBatchEncoderDecoder'
        return
    if not wanted:
        return
    cls = kind if isinstance(kind, type) else None
    if cls is None and isinstance(kind, str):
        from mmseg.registry import MODELS as MMSEG_MODELS
        cls = MODELS.get(kind) or MMSEG_MODELS.get(kind.split('.')[-1])
    for key in wanted:
        if cls is None or not issubclass(cls, FAST_INFERENCE_KEYS[key]):
            raise ValueError(
                f'test_cfg.{key} is set but the segmentor {kind!r} does not '
                f'support it (mmseg EncoderDecoder configs and '
                f'SlideBatchEncoderDecoder do); remove test_cfg.{key}')
