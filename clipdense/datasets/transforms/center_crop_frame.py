"""Shorter-side resize and centre crop the way torchvision does it on PIL
images (``T.Resize(size)`` + ``T.CenterCrop(size)``), as STEGO's and ReCo's
data pipelines do (Hamilton et al., "Unsupervised Semantic Segmentation by
Distilling Feature Correspondences", ICLR 2022; Shin et al., "ReCo:
Retrieve and Co-segment for Zero-shot Transfer", NeurIPS 2022), with the
option to make the crop the frame of evaluation.

mmseg's ``ResizeShortestEdge`` + ``CenterCrop`` differ from it in three
ways that matter for ReCo's protocol: the longer side is rounded (torchvision
truncates), the resampling is cv2's (the protocol resamples with PIL, and
with nearest neighbour for the *images* too), and the prediction is
resized back to the uncropped image while the ground truth stays cropped
(mmseg's ``IoUMetric`` then fails with an ``IndexError``).
"""
from typing import Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from clipdense.registry import TRANSFORMS

_PIL_MODES = ('nearest', 'bilinear', 'bicubic')

#: PackSegInputs meta keys that keep the crop frame (see ``crop_frame``)
FRAME_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'reduced_zero_label',
                   'crop_frame')


def torchvision_resized_size(h: int, w: int, size: int) -> Tuple[int, int]:
    """``(h, w)`` after torchvision's ``Resize(size)`` (an int): the shorter
    side becomes ``size``, the longer ``int(size * long / short)``
    (truncated)."""
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(size * long / short)
    return (size, new_long) if h <= w else (new_long, size)


def center_crop_offsets(h: int, w: int, ch: int, cw: int) -> Tuple[int, int]:
    """``(top, left)`` of torchvision's ``CenterCrop`` (Python ``round``)."""
    return int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))


def pil_resize(arr: np.ndarray, h: int, w: int, interpolation: str) -> np.ndarray:
    """Resize a ``uint8`` image or label map with PIL (what torchvision's
    ``Resize`` does on PIL images)."""
    from PIL import Image
    if arr.dtype != np.uint8:
        raise ValueError(f'PIL resizing needs uint8 arrays, got {arr.dtype}; label maps '
                         'with more than 256 ids cannot go through CenterCropFrame')
    mode = dict(nearest=Image.NEAREST, bilinear=Image.BILINEAR,
                bicubic=Image.BICUBIC)[interpolation]
    out = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((w, h), mode))
    return out.reshape(h, w, *arr.shape[2:])


@TRANSFORMS.register_module()
class CenterCropFrame(BaseTransform):
    """Resize the shorter side to ``scale`` and take the centre
    ``crop_size`` crop, exactly as torchvision's ``Resize`` + ``CenterCrop``
    on PIL images; label maps always with nearest neighbour.

    With ``crop_frame=True`` (evaluation) the crop becomes the frame of
    the sample: ``ori_shape`` is set to the crop size, so the segmentor
    returns its prediction at the crop and the metric compares it with the
    cropped ground truth, as ReCo's evaluation does (its ground truth is
    resized and cropped like the image). The crop's place in the original
    image is kept in ``results['crop_frame']`` (pack it with
    ``PackSegInputs(meta_keys=FRAME_META_KEYS)``) so that a prediction can
    be pasted back into the original image
    (:func:`paste_into_frame`; ReCo+'s pseudo-labels).

    Args:
        scale (int): shorter side after resizing (ReCo: 320).
        crop_size (int | tuple): crop ``(h, w)`` (ReCo: 320).
        interpolation (str): for the image: ``'nearest'`` (STEGO's and
            ReCo's evaluation transform resizes images with nearest
            neighbour), ``'bilinear'`` (ReCo+'s training images,
            torchvision's default) or ``'bicubic'``.
        crop_frame (bool): make the crop the sample's frame (see above).
    """

    def __init__(self, scale: int = 320, crop_size: Union[int, Sequence[int]] = 320,
                 interpolation: str = 'nearest', crop_frame: bool = True):
        if interpolation not in _PIL_MODES:
            raise ValueError(f'interpolation must be one of {_PIL_MODES}, got '
                             f'{interpolation!r}')
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f'scale must be a positive int (the shorter side), got {scale!r}')
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        self.scale = scale
        self.crop_size = tuple(int(c) for c in crop_size)
        self.interpolation = interpolation
        self.crop_frame = bool(crop_frame)

    def transform(self, results: dict) -> dict:
        img = results['img']
        h0, w0 = img.shape[:2]
        nh, nw = torchvision_resized_size(h0, w0, self.scale)
        ch, cw = self.crop_size
        if ch > nh or cw > nw:
            raise ValueError(f'crop {ch}x{cw} is larger than the resized image {nh}x{nw} '
                             f'({results.get("img_path")}); use a crop no larger than '
                             f'scale={self.scale}')
        top, left = center_crop_offsets(nh, nw, ch, cw)
        img = pil_resize(img, nh, nw, self.interpolation)
        results['img'] = img[top:top + ch, left:left + cw]
        for key in results.get('seg_fields', []):
            seg = pil_resize(results[key], nh, nw, 'nearest')
            results[key] = seg[top:top + ch, left:left + cw]
        results['img_shape'] = (ch, cw)
        results['scale_factor'] = (nw / w0, nh / h0)
        frame = dict(ori_shape=(h0, w0), resized_shape=(nh, nw), crop=(top, left, ch, cw))
        if 'crop_frame' in results:
            raise ValueError('CenterCropFrame twice in one pipeline')
        results['crop_frame'] = frame
        if self.crop_frame:
            results['ori_shape'] = (ch, cw)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, crop_size={self.crop_size}, '
                f'interpolation={self.interpolation!r}, crop_frame={self.crop_frame})')


def paste_into_frame(pred: np.ndarray, frame: dict, fill: int = 255) -> np.ndarray:
    """Put a prediction made on a :class:`CenterCropFrame` crop back into
    the original image's frame: every original pixel whose nearest pixel of
    the resized image lies in the crop gets that crop pixel's label, the
    others ``fill`` (mmseg's ignore index).

    For a downscaling resize this is the inverse of the PIL nearest
    resize: resizing the result again with :class:`CenterCropFrame` gives
    ``pred`` back.

    Args:
        pred (ndarray): ``(ch, cw)`` labels of the crop.
        frame (dict): ``results['crop_frame']`` of the transform.
        fill (int): label outside the crop.

    Returns:
        ndarray: ``(H, W)`` labels of the original image (``pred.dtype``).
    """
    h0, w0 = frame['ori_shape']
    nh, nw = frame['resized_shape']
    top, left, ch, cw = frame['crop']
    if pred.shape[:2] != (ch, cw):
        raise ValueError(f'prediction {pred.shape[:2]} is not the crop size {(ch, cw)}')
    ys = np.rint((np.arange(h0) + 0.5) * nh / h0 - 0.5).astype(np.int64) - top
    xs = np.rint((np.arange(w0) + 0.5) * nw / w0 - 0.5).astype(np.int64) - left
    out = np.full((h0, w0), fill, dtype=pred.dtype)
    iy = np.nonzero((ys >= 0) & (ys < ch))[0]
    ix = np.nonzero((xs >= 0) & (xs < cw))[0]
    out[np.ix_(iy, ix)] = pred[np.ix_(ys[iy], xs[ix])]
    return out
