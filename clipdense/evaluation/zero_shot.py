"""Zero-shot image classification with an open_clip model (CLIP's protocol:
class names in a template, nearest text embedding)."""
import json
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_open_clip(arch: str, weights: Optional[str]):
    """An open_clip model with weights from a local open_clip state dict."""
    import open_clip

    from clipdense.fileio import safe_torch_load
    from clipdense.models.utils.clip_archs import register_clip_archs
    register_clip_archs()
    model = open_clip.create_model(arch, pretrained=None)
    if weights is not None:
        state = safe_torch_load(weights, map_location='cpu')
        model.load_state_dict(state.get('state_dict', state))
    return model.eval()


def preprocess(paths: Sequence[str], size: int) -> torch.Tensor:
    """Read images, resize to ``size`` (square), CLIP-normalise: (N,3,S,S)."""
    import cv2
    out = []
    for p in paths:
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'{p} is not a readable image')
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out.append(img[..., ::-1].astype(np.float32) / 255.)
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    mean = torch.tensor(CLIP_MEAN, device='cpu').view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device='cpu').view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def zero_shot_classification(arch: str,
                             weights: Optional[str],
                             labels_file: str,
                             data_root: str,
                             templates: Sequence[str] = ('a photo of a {}.', ),
                             batch_size: int = 64,
                             device='cpu') -> float:
    """Top-1 accuracy on a JSON-lines file of ``{"image", "label", "class"}``.

    The class list is read from the file (``class`` by ``label``). With
    several templates, a class embedding is the renormalised mean of its
    normalised sentence embeddings (CLIP's prompt ensembling). The model
    runs on ``device``; images, tokens and labels are moved there.
    """
    if isinstance(templates, str):
        templates = (templates, )
    import open_clip
    rows = [json.loads(line) for line in open(labels_file) if line.strip()]
    if not rows:
        raise ValueError(f'{labels_file} holds no labelled images')
    names = {}
    for r in rows:
        names[int(r['label'])] = r['class']
    classes = [names[i] for i in sorted(names)]
    device = torch.device(device)
    model = load_open_clip(arch, weights).to(device)
    tokenizer = open_clip.get_tokenizer(arch)
    sent = model.encode_text(
        tokenizer([t.format(c) for c in classes
                   for t in templates]).to(device),
        normalize=True).view(len(classes), len(templates), -1)
    text = torch.nn.functional.normalize(sent.mean(1), dim=-1)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    correct = 0
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        x = preprocess([osp.join(data_root, r['image']) for r in chunk], size)
        img = model.encode_image(x.to(device), normalize=True)
        pred = (img @ text.t()).argmax(1)
        labels = torch.tensor([sorted(names).index(int(r['label']))
                               for r in chunk], device=device)
        correct += int((pred == labels).sum())
    return correct / len(rows)
