import numpy as np
import torch
from mmcv.transforms import BaseTransform

from clipdense.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackCaptionInputs(BaseTransform):
    """Pack an image (HWC, uint8) and its caption for :class:`ContrastiveCLIP`.

    Args:
        with_boxes (bool): also pack the sample's objects and their boxes
            (the rich-caption corpus's ``objects`` and ``boxes``, kept with
            ``CaptionDataset(keep_fields=...)``) for the object-token loss
            of :class:`ContrastiveCLIP`. Boxes ``[x0, y0, x1, y1]`` are
            scaled by the ``scale_factor`` of an earlier ``Resize`` to the
            packed image's pixels. A sample without objects packs none; one
            with objects but no boxes is refused (a corpus older than
            version 2).

    Returns:
        dict: ``inputs`` (3, H, W) uint8 tensor and ``data_samples``, a dict
        with ``caption`` and ``img_path``; with ``with_boxes``, also
        ``objects`` (a numpy array of N nouns, which ``pseudo_collate``
        keeps per sample) and ``boxes`` (an (N, 4) float tensor).
    """

    def __init__(self, with_boxes: bool = False):
        self.with_boxes = bool(with_boxes)

    def _boxes(self, results: dict):
        objects = list(results.get('objects') or [])
        boxes = results.get('boxes')
        boxes = [] if boxes is None else list(boxes)
        if len(objects) != len(boxes):
            raise ValueError(
                f'PackCaptionInputs(with_boxes=True): {len(objects)} objects '
                f'but {len(boxes)} boxes in {results.get("img_path")}; '
                'regenerate the rich-caption corpus (its records carry a box '
                'per object since version 2) and keep "boxes" in the '
                "dataset's keep_fields")
        box = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        sw, sh = results.get('scale_factor', (1.0, 1.0))
        box = box * box.new_tensor([sw, sh, sw, sh])
        return np.array(objects, dtype=str), box

    def __repr__(self):
        return f'{self.__class__.__name__}(with_boxes={self.with_boxes})'

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None].repeat(3, axis=2)
        img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        data_samples = dict(
            caption=results['caption'], img_path=results.get('img_path'))
        if self.with_boxes:
            data_samples['objects'], data_samples['boxes'] = \
                self._boxes(results)
        return dict(inputs=img, data_samples=data_samples)
