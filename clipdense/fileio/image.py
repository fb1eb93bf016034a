"""Reading images as mmseg's loader does: BGR ``uint8`` arrays, EXIF
orientation applied, a pixel limit checked on the file's header before
anything is decoded. The one image reader of ``inference_model``, the demo
and the visualizers."""
import os.path as osp
from typing import Optional, Union

import numpy as np

ImageType = Union[str, np.ndarray]


def image_file_size(path: str) -> Optional[tuple]:
    """``(width, height)`` of an image file from its header (PIL opens
    files lazily: no pixel is decoded), or None when PIL cannot read the
    header (the decoder then decides)."""
    from PIL import Image
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # the caller's limit applies, not PIL's
    try:
        with Image.open(path) as im:
            return tuple(int(v) for v in im.size)
    except Exception:  # noqa: BLE001  (not an image PIL knows)
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def check_image_pixels(path: str, max_pixels: Optional[int],
                       limit_name: str = 'max_pixels') -> None:
    """Refuse an image file above ``max_pixels`` from its header, before
    decoding it (a 400-megapixel PNG can be 1 MB on disk and several GB
    decoded).

    Raises:
        ValueError: the image is larger, naming its size, the limit and how
            to raise it (``limit_name``).
    """
    if max_pixels is None:
        return
    size = image_file_size(path)
    if size is not None and size[0] * size[1] > max_pixels:
        w, h = size
        raise ValueError(
            f'{path} is {w}x{h} ({w * h / 1e6:.1f} megapixels, read from its '
            f'header; nothing decoded), above the limit of '
            f'{max_pixels / 1e6:.1f} megapixels ({limit_name}). Downscale the '
            f'image, or raise {limit_name} if you have the memory (the class '
            'scores of every pixel are kept)')


def decode_image_file(path: str) -> Optional[np.ndarray]:
    """Decode an image file as mmseg's ``LoadImageFromFile`` does (OpenCV,
    EXIF orientation applied: the same ``cv2.imdecode`` code path as its
    ``flag='color'``), but keeping 16-bit depth and grayscale (converted by
    :func:`load_image`). None when OpenCV cannot decode it. The one image
    reader of ``inference_model`` and the demo, so that a photo taken
    sideways gives the same prediction as in ``tools/test.py``."""
    import cv2
    try:
        buf = np.fromfile(path, dtype=np.uint8)
        # not IMREAD_UNCHANGED: that one ignores the EXIF orientation
        return cv2.imdecode(buf, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except Exception:  # noqa: BLE001  (cv2 raises for some broken files)
        return None


def load_image(img: ImageType, max_pixels: Optional[int] = None) -> np.ndarray:
    """An image as a BGR ``uint8`` ``(H, W, 3)`` array (as mmcv loads it).

    Accepts a path or an array: grayscale (and grayscale + alpha) is
    repeated to 3 channels, an alpha channel is dropped (the colour under
    transparent pixels is used as is), 16-bit images are scaled to 8 bits
    (``/257``), float images in ``[0, 1]`` are scaled by 255. A file's EXIF
    orientation is applied as mmseg's loader applies it
    (:func:`decode_image_file`); ``max_pixels`` is checked on the file's
    header before decoding (:func:`check_image_pixels`).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file is not a readable image / bad array shape /
            above ``max_pixels``.
    """
    if isinstance(img, str):
        if not osp.isfile(img):
            raise FileNotFoundError(f'image not found: {img}')
        check_image_pixels(img, max_pixels)
        arr = decode_image_file(img)
        if arr is None:
            raise ValueError(f'{img} is not an image (or an unsupported image '
                             'format); use PNG, JPEG, BMP, TIFF or WebP')
    elif isinstance(img, np.ndarray):
        arr = img
    else:
        raise TypeError(f'images must be paths or arrays, got {type(img).__name__}')
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and \
                np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).round()
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (1, 2):  # gray, gray + alpha
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise ValueError(f'expected an (H, W, 3) image, got shape {arr.shape}')
    return np.ascontiguousarray(arr)
