"""Loading transforms for referring segmentation (training AffordanceCLIP)
and AGD20K heat maps (evaluating it)."""
import numpy as np
from mmcv.transforms import BaseTransform

from clipdense.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadReferringMask(BaseTransform):
    """Decode the target mask of a referring sample into ``gt_seg_map``.

    Reads the COCO ``segmentation`` of the referred annotation that
    :class:`RefSegDataset` puts in each sample (polygons as in RefCOCO,
    uncompressed RLE, or compressed RLE as the synthetic world writes),
    rasterised at the annotation's ``height`` x ``width``. The result is a
    ``uint8`` map with 1 on the target and 0 elsewhere, registered in
    ``seg_fields`` so that mmseg's geometric transforms (``Resize``,
    ``RandomCrop``...) move it with the image, and packed by
    ``PackSegInputs`` as ``gt_sem_seg``.

    Required keys: ``segmentation``, ``height``, ``width`` (and ``img``,
    whose size must match). Added keys: ``gt_seg_map``, ``seg_fields``.
    """

    def transform(self, results: dict) -> dict:
        from ..refer_seg import decode_segmentation
        for key in ('segmentation', 'height', 'width'):
            if key not in results:
                raise KeyError(f"LoadReferringMask needs '{key}' in the sample (use "
                               'RefSegDataset, which provides the referred '
                               "annotation's COCO segmentation)")
        segm = results['segmentation']
        h, w = int(results['height']), int(results['width'])
        if segm is None or (isinstance(segm, (list, tuple)) and len(segm) == 0):
            raise ValueError(f"sample {results.get('img_path')} has an empty "
                             'segmentation: the referred annotation has no mask')
        mask = np.asarray(decode_segmentation(segm, h, w), dtype=np.uint8)
        if mask.ndim == 3:  # pycocotools returns (H, W, n) for a list of RLEs
            mask = mask.max(axis=2)
        if mask.shape != (h, w):
            raise ValueError(f'decoded mask is {mask.shape}, annotation says '
                             f'{(h, w)} ({results.get("img_path")})')
        img = results.get('img')
        if img is not None and img.shape[:2] != (h, w):
            raise ValueError(
                f"image {results.get('img_path')} is {img.shape[:2]} but its "
                f'annotation is {(h, w)}: load the mask before resizing the image')
        results['gt_seg_map'] = (mask > 0).astype(np.uint8)
        results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in results['seg_fields']:
            results['seg_fields'].append('gt_seg_map')
        return results


@TRANSFORMS.register_module()
class LoadAffordanceHeatmap(BaseTransform):
    """Load an AGD20K ground-truth heat map (``gt_path``, grey PNG 0..255)
    into ``gt_seg_map`` (``uint8``, original size).

    Put it after the image ``Resize`` of a test pipeline, as mmseg does with
    ``LoadAnnotations``: the GT stays at its original size and
    :class:`AffordanceMetric` resizes the prediction to it (the AGD20K
    protocol, methods.md Part B 4.3). The values are intensities, not
    class labels.
    """

    def transform(self, results: dict) -> dict:
        import mmcv
        path = results.get('gt_path')
        if path is None:
            raise KeyError("LoadAffordanceHeatmap needs 'gt_path' (use AGD20KDataset)")
        gt = mmcv.imread(path, flag='unchanged', backend='cv2')
        if gt is None:
            raise FileNotFoundError(f'cannot read the GT heat map {path}')
        if gt.ndim == 3:
            gt = gt[..., :3].mean(axis=2).round().astype(np.uint8)
        if gt.dtype != np.uint8:
            raise ValueError(f'GT heat map {path} is {gt.dtype}; AGD20K GT is 8-bit')
        results['gt_seg_map'] = gt
        results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in results['seg_fields']:
            results['seg_fields'].append('gt_seg_map')
        return results
