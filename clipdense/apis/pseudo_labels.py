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

Every label map has its image's size and lines up with it. A test pipeline
that crops (ReCo's Cityscapes-27 and COCO-Stuff-27 configs:
:class:`~clipdense.datasets.transforms.CenterCropFrame`, shorter side 320
and the centre 320x320) labels the crop only, as the authors' pseudo-labels
do: the crop's prediction is pasted back where the crop came from and the
rest of the image is 255 (ignored by training). Each label map is written to
a temporary file and renamed; ``meta.json`` is written last, so a folder
with ``meta.json`` is complete.
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

    from clipdense.models.reco.image_index import list_images
    from clipdense.apis.inference import (inference_model, load_image,
                                          vocabulary_module)
    from clipdense.datasets.transforms.center_crop_frame import paste_into_frame
    from clipdense.fileio import atomic_write_bytes
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
        path = osp.join(img_dir, name)
        res = inference_model(model, path, vocabulary=vocabulary if i == 0 else None)
        if classes is None:
            classes = _classes(model, vocabulary_module)
        pred = res.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        frame = res.metainfo.get('crop_frame')
        if frame is not None:
            pred = paste_into_frame(pred, frame, fill=255)
        else:
            _refuse_hidden_crop(res.metainfo, name)
        h, w = load_image(path).shape[:2]
        if pred.shape != (h, w):
            raise RuntimeError(
                f'the prediction for {name} is {pred.shape[1]}x{pred.shape[0]}, the image '
                f'{w}x{h}: the test pipeline resizes or crops without saying where; '
                'use CenterCropFrame (packing its crop_frame meta key) or a pipeline '
                'whose predictions come back at the image size')
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


def _classes(model, vocabulary_module) -> list:
    """Names of the label ids the model predicts."""
    meta = getattr(model, 'dataset_meta', None) or {}
    head = vocabulary_module(model, required=False)
    n_out = getattr(head, 'num_outputs', None)
    if n_out is not None and getattr(head, 'fine_to_coarse', None) is not None:
        # predictions index the coarse classes (e.g. ReCo's COCO-Stuff-27)
        classes = list(meta.get('classes') or ())
        if len(classes) != n_out:
            cfg = getattr(model, 'cfg', None)
            try:
                classes = list(cfg.test_dataloader.dataset.metainfo.classes)
            except (AttributeError, KeyError, TypeError):
                classes = []
        if len(classes) != n_out:
            raise ValueError(f'the model maps its vocabulary to {n_out} classes but '
                             'neither its dataset_meta nor its config\'s test dataset '
                             'names them; set model.dataset_meta["classes"]')
    else:
        classes = list(meta.get('classes') or vocabulary_module(model).vocabulary)
    if len(classes) > 255:
        raise ValueError(f'{len(classes)} classes do not fit uint8 label maps '
                         'with 255 as ignore index')
    return classes


def _refuse_hidden_crop(meta: dict, name: str) -> None:
    """A pipeline that crops without :class:`CenterCropFrame` (mmseg's
    ``CenterCrop``, ``RandomCrop``) gets its crop's prediction stretched
    over the whole image by mmseg's post-processing: refuse it."""
    sf = meta.get('scale_factor')
    ori, img = meta.get('ori_shape'), meta.get('img_shape')
    if ori is None or img is None:
        return
    if sf is None:
        sf = (1.0, 1.0)
    sw, sh = (sf, sf) if np.isscalar(sf) else (sf[0], sf[1])
    expect = (ori[0] * sh, ori[1] * sw)
    if abs(img[0] - expect[0]) > 1.5 or abs(img[1] - expect[1]) > 1.5:
        raise ValueError(
            f'the test pipeline crops {name} ({ori[1]}x{ori[0]} scaled to '
            f'{expect[1]:.0f}x{expect[0]:.0f}, then {img[1]}x{img[0]}) and would stretch '
            "the crop's prediction over the whole image: crop with CenterCropFrame "
            "(packing its 'crop_frame' meta key) so that the labels are pasted where "
            'the crop came from')
