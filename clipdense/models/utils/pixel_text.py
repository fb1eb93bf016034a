"""DenseCLIP's pixel-text matching as small shared functions.

DenseCLIP (Rao et al., CVPR 2022, Sec. 3.2-3.3) compares every pixel's
joint-space embedding with every class text embedding. Segmentation and
detection both need the same three pieces, so they live here once:

* :func:`visual_context` - the image tokens the context decoder attends to:
  the global embedding followed by the flattened dense embeddings,
  ``(B, 1 + h*w, D)`` (DenseCLIP's ``visual_context``).
* :func:`pixel_text_score_map` - cosine similarity of L2-normalised dense
  and text embeddings, ``(B, K, h, w)`` (Eq. 4 of the paper; DenseCLIP's
  ``score_map``). Dividing by ``tau`` is left to the caller (detection
  concatenates ``score / tau`` to C5; segmentation feeds ``score / tau`` to
  its auxiliary loss).
* :func:`boxes_to_class_masks` - the box-rasterised class targets of
  DenseCLIP's auxiliary segmentation loss for detection.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F


def visual_context(global_embed: torch.Tensor,
                   dense_embed: torch.Tensor) -> torch.Tensor:
    """Global and dense image embeddings as one token sequence.

    Args:
        global_embed (Tensor): ``(B, D)`` image embedding.
        dense_embed (Tensor): ``(B, D, h, w)`` per-pixel embeddings.

    Returns:
        Tensor: ``(B, 1 + h*w, D)``, the global token first.
    """
    if global_embed.dim() != 2 or dense_embed.dim() != 4 or \
            global_embed.shape[:2] != dense_embed.shape[:2]:
        raise ValueError(
            'visual_context expects global (B, D) and dense (B, D, h, w) '
            f'embeddings, got {tuple(global_embed.shape)} and '
            f'{tuple(dense_embed.shape)}')
    dense = dense_embed.flatten(2).transpose(1, 2)  # (B, hw, D)
    return torch.cat([global_embed[:, None].to(dense.dtype), dense], dim=1)


def pixel_text_score_map(dense_embed: torch.Tensor,
                         text_embed: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every pixel with every class text.

    Args:
        dense_embed (Tensor): ``(B, D, h, w)`` per-pixel embeddings.
        text_embed (Tensor): ``(K, D)`` (shared by the batch) or
            ``(B, K, D)`` (per image, e.g. after the context decoder).

    Returns:
        Tensor: ``(B, K, h, w)`` scores in ``[-1, 1]``.
    """
    if text_embed.dim() == 2:
        text_embed = text_embed[None].expand(dense_embed.shape[0], -1, -1)
    if dense_embed.dim() != 4 or text_embed.dim() != 3 or \
            text_embed.shape[0] != dense_embed.shape[0] or \
            text_embed.shape[2] != dense_embed.shape[1]:
        raise ValueError(
            'pixel_text_score_map expects dense (B, D, h, w) and text (K, D) '
            f'or (B, K, D) embeddings of the same D, got '
            f'{tuple(dense_embed.shape)} and {tuple(text_embed.shape)}')
    dense = F.normalize(dense_embed, dim=1)
    text = F.normalize(text_embed, dim=-1).to(dense.dtype)
    return torch.einsum('bchw,bkc->bkhw', dense, text)


def boxes_to_class_masks(boxes: Sequence[torch.Tensor],
                         labels: Sequence[torch.Tensor], num_classes: int,
                         size: Tuple[int, int], stride: Tuple[float, float],
                         rounding: str = 'cover'
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rasterise boxes into per-class binary masks on a strided grid.

    The targets of DenseCLIP's auxiliary segmentation loss for detection
    (``build_seg_target`` in the authors' detection code): class ``k`` is 1
    inside every box of class ``k``; the loss is taken only inside the
    union of boxes. Box corners are mapped to grid cells with
    ``floor(x1 / s)`` .. ``ceil(x2 / s)``, so every box of positive size
    covers at least one cell (``rounding='cover'``). ``rounding='truncate'``
    is the authors' rule: both corners truncated (``(box / s).long()``),
    clamped to ``[0, w-1]`` / ``[0, h-1]``, end exclusive, so boxes smaller
    than one cell and the last row/column are dropped.

    Args:
        boxes (Sequence[Tensor]): per image ``(N_i, 4)`` ``x1, y1, x2, y2``
            in input-image pixels.
        labels (Sequence[Tensor]): per image ``(N_i,)`` class indices in
            ``[0, num_classes)``.
        num_classes (int): ``K``.
        size (tuple[int, int]): grid size ``(h, w)``.
        stride (tuple[float, float]): input pixels per cell ``(sy, sx)``.
        rounding (str): ``'cover'`` or ``'truncate'`` (see above).

    Returns:
        tuple[Tensor, Tensor]: ``target (B, K, h, w)`` and ``in_box
        (B, 1, h, w)``, both float, on the boxes' device.
    """
    if rounding not in ('cover', 'truncate'):
        raise ValueError(f"rounding must be 'cover' or 'truncate', got {rounding!r}")
    h, w = int(size[0]), int(size[1])
    b = len(boxes)
    device = boxes[0].device if b else torch.device('cpu')
    target = torch.zeros(b, num_classes, h, w, device=device)
    in_box = torch.zeros(b, 1, h, w, device=device)
    sy, sx = float(stride[0]), float(stride[1])
    for i, (bx, lb) in enumerate(zip(boxes, labels)):
        if bx.numel() == 0:
            continue
        if lb.numel() and (int(lb.min()) < 0 or int(lb.max()) >= num_classes):
            raise ValueError(f'box labels must be in [0, {num_classes}), got '
                             f'{int(lb.min())}..{int(lb.max())}')
        if rounding == 'truncate':
            cells = (bx / bx.new_tensor([sx, sy, sx, sy])).long()
            x1, x2 = (cells[:, j].clamp(0, w - 1).tolist() for j in (0, 2))
            y1, y2 = (cells[:, j].clamp(0, h - 1).tolist() for j in (1, 3))
        else:
            x1 = (bx[:, 0] / sx).floor().clamp(0, w).long().tolist()
            y1 = (bx[:, 1] / sy).floor().clamp(0, h).long().tolist()
            x2 = (bx[:, 2] / sx).ceil().clamp(0, w).long().tolist()
            y2 = (bx[:, 3] / sy).ceil().clamp(0, h).long().tolist()
        for k, a, c, d, e in zip(lb.tolist(), x1, y1, x2, y2):
            target[i, k, c:e, a:d] = 1
            in_box[i, :, c:e, a:d] = 1
    return target, in_box
