import numpy as np
import torch
from mmcv.transforms import BaseTransform

from clipdense.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackCaptionInputs(BaseTransform):
    """Pack an image (HWC, uint8) and its caption for :class:`ContrastiveCLIP`.

    Returns:
        dict: ``inputs`` (3, H, W) uint8 tensor and ``data_samples``, a dict
        with ``caption`` and ``img_path``.
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None].repeat(3, axis=2)
        img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return dict(
            inputs=img,
            data_samples=dict(
                caption=results['caption'],
                img_path=results.get('img_path')))
