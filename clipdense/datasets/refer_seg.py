"""Referring segmentation reader (RefCOCO-style refs + COCO instances)."""
import json
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from clipdense.registry import DATASETS
from .synthetic.writers import rle_decode


def decode_segmentation(segm, height, width):
    """Binary (H, W) uint8 mask of a COCO ``segmentation`` (polygons,
    uncompressed or compressed RLE)."""
    if isinstance(segm, dict) and isinstance(segm.get('counts'),
                                             (str, bytes, list)):
        return rle_decode(segm)
    # Polygons (real RefCOCO): rasterise with pycocotools.
    from pycocotools import mask as mask_utils
    rles = mask_utils.frPyObjects(segm, height, width)
    return mask_utils.decode(mask_utils.merge(rles))


@DATASETS.register_module()
class RefSegDataset(BaseDataset):
    """Referring segmentation: (image, expression, mask) triples.

    Layout (RefCOCO's, with the refs stored as JSON)::

        <data_root>/<img_dir>/<file_name>
        <data_root>/<dataset>/instances.json   COCO images/annotations
        <data_root>/<dataset>/refs.json        list of refs

    A ref is a dict with ``ref_id``, ``ann_id`` (the annotation whose mask
    is the target), ``image_id``, ``split``, ``category_id``, ``file_name``
    and ``sentences`` (``[{'sent_id', 'raw', 'sent', 'tokens'}]``) -- the
    fields of RefCOCO's ``refs(unc).p``, so a real RefCOCO becomes readable
    by dumping that pickle to JSON once. The synthetic world adds ``kind``
    ('object' or 'part'), ``part`` (e.g. 'handle') and ``object_ann_id``,
    and its instances.json holds part annotations (category ids 101+) next
    to the object annotations.

    One sample per sentence (``per_sentence=True``) or per ref (all
    sentences in ``texts``). Info keys: ``img_path``, ``text``, ``texts``,
    ``ref_id``, ``ann_id``, ``category_id``, ``kind``, ``part``,
    ``height``, ``width`` and ``segmentation`` (COCO format; decode with
    :func:`decode_segmentation` or :meth:`get_mask`).

    Args:
        data_root (str): root folder.
        dataset (str): sub-folder with ``instances.json`` and the refs.
        split (str): refs whose ``split`` equals this.
        img_dir (str): image folder relative to ``data_root``.
        refs_file (str): refs file name inside ``dataset``.
        kinds (sequence[str], optional): keep refs of these kinds only
            (refs without a ``kind`` count as 'object').
        per_sentence (bool): one sample per sentence instead of per ref.
        **kwargs: the arguments of ``mmengine.dataset.BaseDataset``.
    """
    METAINFO = dict(classes=('background', 'target'))

    def __init__(self,
                 data_root: str,
                 *,
                 dataset: str = 'refsynth',
                 split: str = 'train',
                 img_dir: str = 'images',
                 refs_file: str = 'refs.json',
                 kinds: Optional[Sequence[str]] = None,
                 per_sentence: bool = True,
                 **kwargs) -> None:
        self.dataset = dataset
        self.split = split
        self.img_dir = img_dir
        self.refs_file = refs_file
        self.kinds = tuple(kinds) if kinds else None
        self.per_sentence = per_sentence
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self):
        d = osp.join(self.data_root, self.dataset)
        with open(osp.join(d, 'instances.json')) as f:
            inst = json.load(f)
        with open(osp.join(d, self.refs_file)) as f:
            refs = json.load(f)
        anns = {a['id']: a for a in inst['annotations']}
        images = {i['id']: i for i in inst['images']}
        data_list = []
        for ref in refs:
            if ref['split'] != self.split:
                continue
            kind = ref.get('kind', 'object')
            if self.kinds is not None and kind not in self.kinds:
                continue
            ann = anns[ref['ann_id']]
            img = images[ref['image_id']]
            texts = [s['sent'] for s in ref['sentences']]
            base = dict(
                img_path=osp.join(self.data_root, self.img_dir,
                                  img['file_name']),
                ref_id=ref['ref_id'], ann_id=ref['ann_id'],
                category_id=ref['category_id'], kind=kind,
                part=ref.get('part'), height=img['height'],
                width=img['width'], segmentation=ann['segmentation'],
                texts=texts)
            if self.per_sentence:
                data_list += [dict(base, text=t) for t in texts]
            else:
                data_list.append(dict(base, text=texts[0]))
        return data_list

    def get_mask(self, idx: int) -> np.ndarray:
        """Binary (H, W) uint8 target mask of sample ``idx``."""
        info = self.get_data_info(idx)
        return decode_segmentation(info['segmentation'], info['height'],
                                   info['width'])
