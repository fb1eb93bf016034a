"""ReCo's co-segmentation: from the dense features of the ``k`` images
retrieved for a concept to one reference embedding of that concept
(Shin et al., "ReCo: Retrieve and Co-segment for Zero-shot Transfer",
NeurIPS 2022, Sec. 3.2), plus the two weightings of Sec. 3.3: language
guidance (dense-CLIP text attention) and context elimination.

The co-segmentation (``reference_embedding``):

1. flatten and L2-normalise the features of all ``k`` images,
   ``F in R^{(k*h*w) x C}``, affinity ``A = F F^T``;
2. weight the columns (the *target* pixels) by the pixel weights ``w``;
3. for every pixel ``p`` and every image ``j``:
   ``g[p, j] = max over the pixels q of image j of A[p, q]``;
   ``s[p] = mean_j g[p, j]`` (how well ``p`` is matched in every image);
4. one seed per image: the pixel with the largest ``s`` in that image;
5. reference = L2-normalise(mean of the raw seed features).

Difference from the authors' code (``networks/reco.py``,
``_get_reference_image_feature``, commit 5c5e1bc): there the columns of
image ``j`` are sliced as ``adj[:, start : start + end]`` with
``end = start + h*w``, so for ``j >= 1`` the maximum is taken over the
pixels of images ``j .. 2j`` (clipped at the last image), not of image ``j``
alone. Later images therefore count several times in the mean and a pixel
is rewarded for matching *any* of a run of images; the seeds, and so the
references, change (the paper's numbers come from that code). Here each
image's columns are exactly its own (``column_slicing='per_image'``,
default); ``column_slicing='reference_code'`` reproduces the authors'
slices for comparison. Both include the pixel's own image in the mean, as
the authors' code does (``include_own_image=False`` leaves it out).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

COLUMN_SLICINGS = ('per_image', 'reference_code')


def _column_ranges(n: int, hw: int, slicing: str):
    """Column range ``[start, stop)`` of each image's max."""
    if slicing == 'per_image':
        return [(j * hw, (j + 1) * hw) for j in range(n)]
    # the authors' code: start = j*hw, slice [start : start + (start + hw)]
    return [(j * hw, min(n * hw, 2 * j * hw + hw)) for j in range(n)]


def seed_scores(features: torch.Tensor, weights: Optional[torch.Tensor] = None, *,
                column_slicing: str = 'per_image', include_own_image: bool = True,
                chunk: int = 4096) -> torch.Tensor:
    """Per-pixel co-segmentation score ``s`` (step 3 above).

    Args:
        features (Tensor): ``(k, C, h, w)`` dense features of the images.
        weights (Tensor, optional): ``(k, h, w)`` pixel weights in [0, 1]
            (language guidance, context elimination); default all ones.
        column_slicing (str): ``'per_image'`` or ``'reference_code'``.
        include_own_image (bool): count the pixel's own image in the mean.
        chunk (int): rows of the affinity computed at once (memory bound:
            ``chunk * k*h*w`` floats).

    Returns:
        Tensor: ``(k, h, w)`` scores.
    """
    if features.dim() != 4:
        raise ValueError(f'features must be (k, C, h, w), got {tuple(features.shape)}')
    if column_slicing not in COLUMN_SLICINGS:
        raise ValueError(f'column_slicing must be one of {COLUMN_SLICINGS}, '
                         f'got {column_slicing!r}')
    n, c, h, w = features.shape
    hw = h * w
    flat = F.normalize(features.float().permute(0, 2, 3, 1).reshape(n * hw, c), dim=-1)
    if weights is None:
        col_w = None
    else:
        if weights.shape != (n, h, w):
            raise ValueError(f'weights must be (k, h, w) = {(n, h, w)}, got '
                             f'{tuple(weights.shape)}')
        col_w = weights.float().reshape(n * hw).to(flat.device)
    if not include_own_image and n < 2:
        raise ValueError('include_own_image=False needs at least 2 images')
    ranges = _column_ranges(n, hw, column_slicing)
    own = torch.arange(n * hw, device=flat.device) // hw
    out = torch.empty(n * hw, device=flat.device)
    for r0 in range(0, n * hw, chunk):
        a = flat[r0:r0 + chunk] @ flat.T  # (rows, k*h*w)
        if col_w is not None:
            a = a * col_w[None]
        if column_slicing == 'per_image':
            g = a.view(a.shape[0], n, hw).amax(dim=-1)  # (rows, k)
        else:
            g = torch.stack([a[:, s:e].amax(dim=-1) for s, e in ranges], dim=1)
        if include_own_image:
            out[r0:r0 + chunk] = g.mean(dim=1)
        else:
            mask = F.one_hot(own[r0:r0 + chunk], n).bool()
            out[r0:r0 + chunk] = g.masked_fill(mask, 0).sum(dim=1) / (n - 1)
    return out.view(n, h, w)


def reference_embedding(features: torch.Tensor, weights: Optional[torch.Tensor] = None,
                        **kwargs) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Co-segment ``k`` images into one reference embedding.

    Args:
        features (Tensor): ``(k, C, h, w)``.
        weights (Tensor, optional): ``(k, h, w)`` in [0, 1].
        **kwargs: see :func:`seed_scores`.

    Returns:
        tuple: reference ``(C,)`` (L2-normalised), seed features ``(k, C)``
        (raw), seed positions ``(k, 2)`` (row, column on the feature grid).
    """
    n, c, h, w = features.shape
    scores = seed_scores(features, weights, **kwargs)
    flat_idx = scores.view(n, h * w).argmax(dim=1)
    seeds = features.float().flatten(2)[torch.arange(n, device=features.device),
                                        :, flat_idx.to(features.device)]
    ref = F.normalize(seeds.mean(dim=0), dim=0)
    pos = torch.stack([flat_idx // w, flat_idx % w], dim=1)
    return ref, seeds, pos


def text_attention(clip_features: torch.Tensor, text: torch.Tensor,
                   temperature: float = 10.0,
                   size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """Dense-CLIP text attention ``sigmoid(T * cos(f_clip, t))`` (ReCo
    Sec. 3.3, "language-guided co-segmentation"; ``T = 10``).

    Args:
        clip_features (Tensor): ``(B, D, h, w)`` MaskCLIP-style joint-space
            features.
        text (Tensor): ``(K, D)`` or ``(D,)`` text embeddings.
        temperature (float): ``T``.
        size (tuple, optional): bilinear resize of the map.

    Returns:
        Tensor: ``(B, K, H, W)`` (or ``(B, H, W)`` for a single text) in
        (0, 1).
    """
    single = text.dim() == 1
    t = F.normalize(text.float().reshape(-1, text.shape[-1]), dim=-1).to(clip_features.device)
    f = F.normalize(clip_features.float(), dim=1)
    att = torch.sigmoid(temperature * torch.einsum('bdhw,kd->bkhw', f, t))
    if size is not None and tuple(att.shape[-2:]) != tuple(size):
        att = F.interpolate(att, size=size, mode='bilinear', align_corners=False)
    return att[:, 0] if single else att


def reference_scores(features: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """``sigmoid(cos(f, r))`` (no temperature, as ReCo): ``(B, C, h, w)``
    features and ``(K, C)`` references -> ``(B, K, h, w)`` in
    [0.27, 0.73]."""
    f = F.normalize(features.float(), dim=1)
    r = F.normalize(references.float(), dim=-1).to(f.device)
    return torch.sigmoid(torch.einsum('bchw,kc->bkhw', f, r))


def context_weights(features: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
    """Context elimination weight ``prod_ctx (1 - sigmoid(cos(f, r_ctx)))``
    (ReCo Sec. 3.3): ``(k, C, h, w)`` features, ``(M, C)`` context
    references -> ``(k, h, w)``; all ones for ``M = 0``."""
    if contexts.numel() == 0:
        return features.new_ones(features.shape[0], *features.shape[2:]).float()
    return (1.0 - reference_scores(features, contexts)).prod(dim=1)
