"""Pseudo-labels in the mmseg format from any segmentor (ReCo+ trains a
DeepLabv3+ on ReCo's predictions for the target's unlabelled training
images; Shin et al., NeurIPS 2022, Sec. 3.4).

Written layout (read by any mmseg folder dataset with ``seg_map_suffix``
``'.png'``)::

    <out_dir>/<rel stem>.png  uint8 class ids (the vocabulary's order); the
                              image's path relative to img_dir, extension
                              replaced (sub-folders kept)
    <out_dir>/split.txt       one relative stem per line (mmseg ``ann_file``;
                              use ``img_suffix``/``seg_map_suffix`` '.png'
                              or the images' extension)
    <out_dir>/meta.json       vocabulary, image folder, count, model config

Each label map is written to a temporary file and renamed; ``meta.json`` is
written last, so a folder with ``meta.json`` is complete.
"""
import json
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np


def write_pseudo_labels(model, img_dir: str, out_dir: str, *,
                        vocabulary: Optional[Sequence[str]] = None,
                        progress: bool = True) -> dict:
    """Segment every image of ``img_dir`` and write the label maps.

    Args:
        model: a segmentor from :func:`clipdense.apis.init_model`.
        img_dir (str): folder of images (searched recursively).
        out_dir (str): output folder (created).
        vocabulary (Sequence[str], optional): class names to use (default:
            the model's).
        progress (bool): tqdm progress bar.

    Returns:
        dict: the contents of ``meta.json``.

    Raises:
        ValueError: no images, or more than 255 classes (255 is mmseg's
            ignore index).
    """
    import cv2
    from tqdm import tqdm

    from clipdense.apis.image_index import list_images
    from clipdense.apis.inference import inference_model, vocabulary_module
    from clipdense.engine.checkpoint import atomic_write_bytes
    images = list_images(img_dir)[0]
    if not images:
        raise ValueError(f'no images in {img_dir}: nothing to pseudo-label')
    os.makedirs(out_dir, exist_ok=True)
    meta_path = osp.join(out_dir, 'meta.json')
    if osp.exists(meta_path):
        os.unlink(meta_path)  # incomplete until rewritten below
    classes = None
    stems = []
    for i, name in enumerate(tqdm(images, desc='pseudo-labels', disable=not progress)):
        res = inference_model(model, osp.join(img_dir, name),
                              vocabulary=vocabulary if i == 0 else None)
        if classes is None:
            meta = getattr(model, 'dataset_meta', None) or {}
            classes = list(meta.get('classes') or vocabulary_module(model).vocabulary)
            if len(classes) > 255:
                raise ValueError(f'{len(classes)} classes do not fit uint8 label maps '
                                 'with 255 as ignore index')
        pred = res.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        stem = osp.splitext(name)[0]
        ok, buf = cv2.imencode('.png', pred)
        if not ok:
            raise RuntimeError(f'could not encode the label map of {name}')
        atomic_write_bytes(osp.join(out_dir, stem + '.png'), buf.tobytes())  # makes sub-folders
        stems.append(stem)
    atomic_write_bytes(osp.join(out_dir, 'split.txt'), ('\n'.join(stems) + '\n').encode())
    meta = dict(classes=classes, img_dir=osp.abspath(img_dir), count=len(stems),
                config=getattr(getattr(model, 'cfg', None), 'filename', None))
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode())
    return meta
