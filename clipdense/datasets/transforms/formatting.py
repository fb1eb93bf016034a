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
        with_masks (bool): instead, pack one region per class of the
            sample's label map (``gt_seg_map``, from
            :class:`LoadCaptionSegMap` and resized with the image): its
            name in ``objects`` (from ``classes``) and its pixels in
            ``masks``. Values outside ``classes`` (255 = ignore) are not
            regions; a sample without a label map packs none. A sample
            whose record names its own label values (``seg_classes``, the
            rich-caption corpus's anomaly images since version 4: intact /
            defect; kept with ``keep_fields``) is read with those names.
        classes (sequence[str]): the label map's class names, by index
            (needed with ``with_masks``).

    Returns:
        dict: ``inputs`` (3, H, W) uint8 tensor and ``data_samples``, a dict
        with ``caption`` and ``img_path``; with ``with_boxes``, also
        ``objects`` (a numpy array of N nouns, which ``pseudo_collate``
        keeps per sample) and ``boxes`` (an (N, 4) float tensor); with
        ``with_masks``, ``objects`` and ``masks`` (an (N, H, W) bool
        tensor).
    """

    def __init__(self, with_boxes: bool = False, with_masks: bool = False,
                 classes=None):
        if with_boxes and with_masks:
            raise ValueError('PackCaptionInputs: with_boxes and with_masks '
                             'pack the same regions two ways; pick one')
        if with_masks and not classes:
            raise ValueError('PackCaptionInputs(with_masks=True) needs '
                             'classes, the label map\'s class names by index')
        self.with_boxes = bool(with_boxes)
        self.with_masks = bool(with_masks)
        self.classes = None if classes is None else tuple(classes)

    def _masks(self, results: dict, shape):
        seg = results.get('gt_seg_map')
        if seg is None:
            return (np.array([], dtype=str),
                    torch.zeros((0, ) + tuple(shape), dtype=torch.bool,
                                device='cpu'))
        if tuple(seg.shape[:2]) != tuple(shape):
            raise ValueError(
                f'PackCaptionInputs: the label map of '
                f'{results.get("img_path")} is {seg.shape[:2]} but the image '
                f'{tuple(shape)}; resize both in one transform (Resize)')
        classes = results.get('seg_classes')
        classes = self.classes if classes is None else tuple(classes)
        seg = torch.from_numpy(np.ascontiguousarray(seg).astype(np.int64))
        ids = [int(i) for i in seg.unique() if 0 <= i < len(classes)]
        names = np.array([classes[i] for i in ids], dtype=str)
        masks = torch.stack([seg == i for i in ids]) if ids else \
            torch.zeros((0, ) + tuple(shape), dtype=torch.bool, device='cpu')
        return names, masks

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
        box = torch.tensor(boxes, dtype=torch.float32,
                           device='cpu').reshape(-1, 4)
        sw, sh = results.get('scale_factor', (1.0, 1.0))
        box = box * box.new_tensor([sw, sh, sw, sh])
        return np.array(objects, dtype=str), box

    def __repr__(self):
        return (f'{self.__class__.__name__}(with_boxes={self.with_boxes}, '
                f'with_masks={self.with_masks})')

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
        if self.with_masks:
            data_samples['objects'], data_samples['masks'] = \
                self._masks(results, img.shape[1:])
        return dict(inputs=img, data_samples=data_samples)
