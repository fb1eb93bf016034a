"""torchvision-style ``RandomResizedCrop`` as an mmcv transform (OVSeg's CLIP
adaptation augments its masked crops with it: scale 0.9-1.0, bicubic)."""
import math
from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from clipdense.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CLIPRandomResizedCrop(BaseTransform):
    """Crop a random area and aspect ratio, then resize to ``size``.

    The sampling is torchvision's ``RandomResizedCrop.get_params``: up to 10
    tries of an area fraction in ``scale`` and a log-uniform aspect ratio in
    ``ratio``; if none fits, the largest centre crop within ``ratio``. The
    resize is OpenCV's (``mmcv.imresize``) rather than PIL's, so bicubic
    results differ from torchvision's by rounding.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``.

    Args:
        size (int | tuple): output ``(h, w)``.
        scale (tuple): area fraction range (OVSeg: ``(0.9, 1.0)``).
        ratio (tuple): aspect-ratio range (torchvision's ``(3/4, 4/3)``).
        interpolation (str): mmcv interpolation (OVSeg: bicubic).
    """

    def __init__(self, size: Union[int, Sequence[int]], scale: Tuple[float, float] = (0.9, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                 interpolation: str = 'bicubic'):
        self.size = (int(size), int(size)) if isinstance(size, (int, float)) else \
            tuple(int(s) for s in size)
        if len(self.size) != 2 or min(self.size) <= 0:
            raise ValueError(f'size must be a positive int or (h, w), got {size}')
        if not (0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f'scale must satisfy 0 < min <= max <= 1, got {scale}')
        if not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f'ratio must satisfy 0 < min <= max, got {ratio}')
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        self.interpolation = interpolation

    def get_params(self, h: int, w: int) -> Tuple[int, int, int, int]:
        """``(top, left, crop_h, crop_w)``."""
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * np.random.uniform(*self.scale)
            aspect = math.exp(np.random.uniform(*log_ratio))
            cw = int(round(math.sqrt(target * aspect)))
            ch = int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                top = np.random.randint(0, h - ch + 1)
                left = np.random.randint(0, w - cw + 1)
                return top, left, ch, cw
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            cw, ch = w, int(round(w / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            ch, cw = h, int(round(h * self.ratio[1]))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def transform(self, results: dict) -> dict:
        img = results['img']
        top, left, ch, cw = self.get_params(*img.shape[:2])
        crop = img[top:top + ch, left:left + cw]
        out_h, out_w = self.size
        results['img'] = mmcv.imresize(crop, (out_w, out_h), interpolation=self.interpolation)
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio}, interpolation={self.interpolation})')
