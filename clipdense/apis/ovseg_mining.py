"""Mine (masked proposal, noun) pairs from captioned images (OVSeg,
Liang et al., CVPR 2023, Sec. 3.2).

For each image: nouns are extracted from its caption
(:class:`clipdense.datasets.nouns.OpenNounExtractor`: an open English
lexicon, offline; not derived from any class list), the OVSeg
proposal model predicts masks, every mask is cropped OVSeg-style (tight
box, CLIP-mean background, squashed to CLIP's size) and embedded by the
*vanilla* CLIP of the model's CLIP branch, and each noun is paired with the
proposal whose crop matches it best (noun -> top-1 proposal). Crops are
written as PNG with the pixels outside the (resized) crop mask set to
:data:`~clipdense.models.pretraining.OVSEG_STORED_FILL` (124, 116, 103),
the colour OVSeg's CLIP-adaptation code recovers the mask from (lossless:
the colour must survive for mask prompt tuning), with a JSON-lines file in :class:`CaptionDataset` format
(``{"image", "caption"}`` where the caption is the noun) plus the full-size
mask and the source image.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch


def _prepare(model, img):
    from mmengine.registry import init_default_scope

    from .inference import _test_pipeline, load_image
    init_default_scope(model.cfg.get('default_scope', 'clipdense'))
    arr = load_image(img)
    data = dict(img=arr, img_path=img if isinstance(img, str) else None,
                img_shape=arr.shape[:2], ori_shape=arr.shape[:2])
    data = _test_pipeline(model.cfg)(data)
    batch = model.data_preprocessor(dict(inputs=[data['inputs']],
                                         data_samples=[data['data_samples']]), False)
    return batch['inputs'], [ds.metainfo for ds in batch['data_samples']]


@torch.no_grad()
def mine_mask_noun_pairs(model, records: Sequence[Dict], out_dir: str, *,
                         data_root: str = '',
                         extractor: Optional[Callable[[str], List[str]]] = None,
                         min_area: int = 16, templates=None,
                         progress: Optional[Callable[[str], None]] = None) -> Dict:
    """Mine pairs with an OVSeg model (see the module docstring).

    Args:
        model: an :class:`OVSeg` segmentor (from :func:`init_model`) whose
            head has a ``clip_classifier`` (used without mask prompts).
        records (Sequence[dict]): ``{"image": path relative to data_root,
            "caption": str}``.
        out_dir (str): where ``crops/``, ``masks/`` and ``pairs.jsonl`` go.
        extractor (callable, optional): caption -> nouns; default
            :class:`OpenNounExtractor` (open lexicon, OVSeg mines open nouns).
        min_area (int): proposals with fewer pixels are ignored.
        templates: text templates for matching nouns to crops (default: the
            head text encoder's).

    Returns:
        dict: ``pairs`` (the records written), ``ann_file`` (path of
        ``pairs.jsonl``), ``num_images``, ``nouns`` (unique nouns).
    """
    import mmcv

    from clipdense.datasets.nouns import OpenNounExtractor
    from clipdense.models.pretraining import store_crop_with_fill
    head = model.decode_head
    clip = getattr(head, 'clip_classifier', None)
    if clip is None:
        raise ValueError('mining needs the model\'s CLIP branch: its decode head has no '
                         'clip_classifier (use an OVSeg config with one)')
    if not records:
        raise ValueError('no captioned images given')
    extractor = extractor or OpenNounExtractor()
    prompts = clip.mask_prompts if clip.prompt_depth else None
    saved_depth = clip.prompt_depth
    clip.prompt_depth = 0  # vanilla CLIP, as OVSeg mines with the original CLIP
    os.makedirs(osp.join(out_dir, 'crops'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'masks'), exist_ok=True)
    pairs, num_images = [], 0
    try:
        for n, rec in enumerate(records):
            if 'image' not in rec or 'caption' not in rec:
                raise ValueError(f'record {n} needs "image" and "caption", got {sorted(rec)}')
            nouns = extractor(rec['caption'])
            if not nouns:
                continue
            inputs, metas = _prepare(model, osp.join(data_root, rec['image']))
            x = model.extract_feat(inputs)
            _, masks = head.predict_proposals(x, metas, inputs.shape[-2:])
            image = model._images_0_255(inputs)[0]
            binary = masks[0].sigmoid() > head.mask_thr
            binary = binary[binary.flatten(1).sum(1) >= min_area]
            crops, cmasks, valid = clip.crops(image, binary)
            if crops.shape[0] == 0:
                continue
            num_images += 1
            emb = clip(crops, cmasks)
            text = head.text_encoder(list(nouns), templates=templates).to(emb)
            sim = text @ emb.t()  # (N nouns, M crops)
            best = sim.argmax(dim=1).tolist()
            kept = binary[valid]
            stem = osp.splitext(osp.basename(rec['image']))[0]
            for j, (noun, b) in enumerate(zip(nouns, best)):
                name = f'{stem}_{j}_{noun.replace(" ", "-")}.png'
                # background exactly the authors' stored colour (Maskget)
                crop = store_crop_with_fill(crops[b], cmasks[b]).cpu().numpy()
                mmcv.imwrite(crop[:, :, ::-1], osp.join(out_dir, 'crops', name))
                h, w = metas[0]['ori_shape']
                mask = kept[b][:h, :w].cpu().numpy().astype(np.uint8) * 255
                mmcv.imwrite(mask, osp.join(out_dir, 'masks', name))
                pairs.append(dict(image=f'crops/{name}', caption=noun, mask=f'masks/{name}',
                                  source=rec['image'], score=float(sim[j, b])))
            if progress is not None and (n + 1) % 50 == 0:
                progress(f'mined {len(pairs)} pairs from {n + 1} images')
    finally:
        clip.prompt_depth = saved_depth
        if prompts is not None:
            clip.mask_prompts = prompts
    ann = osp.join(out_dir, 'pairs.jsonl')
    with open(ann, 'w', encoding='utf-8') as f:
        for p in pairs:
            f.write(json.dumps(p) + '\n')
    return dict(pairs=pairs, ann_file=ann, num_images=num_images,
                nouns=sorted({p['caption'] for p in pairs}))
