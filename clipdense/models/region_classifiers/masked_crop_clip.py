"""CLIP classification of masked region crops, with mask prompt tuning.

OVSeg (Liang et al., "Open-Vocabulary Semantic Segmentation with
Mask-adapted CLIP", CVPR 2023), Sec. 3.1 and 3.3: each binary proposal mask
is cut out of the image along its tight bounding box, the pixels outside
the mask are filled with CLIP's mean colour (so they become zero after
CLIP's normalisation), the crop is squashed (no aspect ratio kept, no
padding) to CLIP's input size and classified by the cosine of its CLIP
embedding with text embeddings. Mask prompt tuning (MPT) replaces the
tokens of patches that lie entirely outside the mask by learnable prompts,
at the input and again after each of the first ``depth - 1`` blocks; the
CLIP weights stay untouched.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from clipdense.registry import MODELS

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def mask_boxes(masks: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Tight boxes of binary masks.

    Args:
        masks (Tensor): ``(N, H, W)`` bool.

    Returns:
        tuple: ``boxes (N, 4)`` long ``(y0, y1, x0, x1)`` with exclusive
        ends, and ``valid (N,)`` bool (False for empty masks, whose box is
        all zeros).
    """
    if masks.dim() != 3:
        raise ValueError(f'masks must be (N, H, W), got shape {tuple(masks.shape)}')
    masks = masks.bool()
    n, h, w = masks.shape
    rows = masks.any(dim=2)  # (N, H)
    cols = masks.any(dim=1)  # (N, W)
    valid = rows.any(dim=1)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    big = h + w + 1
    y0 = torch.where(rows, ar_h, big).min(dim=1).values
    y1 = torch.where(rows, ar_h, -1).max(dim=1).values + 1
    x0 = torch.where(cols, ar_w, big).min(dim=1).values
    x1 = torch.where(cols, ar_w, -1).max(dim=1).values + 1
    boxes = torch.stack([y0, y1, x0, x1], dim=1)
    boxes[~valid] = 0
    return boxes.long(), valid


def crop_with_masks(image: torch.Tensor, masks: torch.Tensor,
                    size: Union[int, Tuple[int, int]],
                    fill: Sequence[float] = tuple(255 * m for m in CLIP_MEAN),
                    expand_ratio: float = 1.0, clamp: bool = True):
    """OVSeg's masked crops: tight box, background filled, squashed.

    Args:
        image (Tensor): ``(3, H, W)`` float, un-normalised (0-255 RGB).
        masks (Tensor): ``(N, H, W)`` bool (or 0/1) proposal masks.
        size (int | tuple): output ``(h, w)`` (CLIP's input size); the crop is
            resized to it bicubically, without keeping the aspect ratio.
        fill (Sequence[float]): colour of the pixels outside the mask (CLIP's
            mean in 0-255 by default: zero after normalisation).
        expand_ratio (float): box scale around its centre (OVSeg:
            ``MASK_EXPAND_RATIO = 1.0``, the tight box).
        clamp (bool): clamp the resized crops to 0-255 (bicubic overshoots
            at edges). The authors do not (they resize the normalised crop):
            :class:`MaskedCropCLIP` passes False.

    Returns:
        tuple: ``crops (M, 3, h, w)`` (clamped to 0-255 if ``clamp``), ``crop_masks (M, h,
        w)`` bool (nearest-resized), ``valid (N,)`` bool; ``M = valid.sum()``:
        empty masks are dropped (OVSeg's ``valid_flag``).
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f'image must be (3, H, W), got shape {tuple(image.shape)}')
    if masks.dim() != 3 or masks.shape[-2:] != image.shape[-2:]:
        raise ValueError(f'masks must be (N, H, W) with the image size {tuple(image.shape[-2:])}, '
                         f'got shape {tuple(masks.shape)}')
    if expand_ratio < 1.0:
        raise ValueError(f'expand_ratio must be >= 1, got {expand_ratio}')
    size = (size, size) if isinstance(size, int) else tuple(size)
    masks = masks.bool()
    boxes, valid = mask_boxes(masks)
    fill_t = image.new_tensor(fill).view(3, 1, 1)
    h, w = image.shape[-2:]
    crops, cmasks = [], []
    for i in torch.nonzero(valid).flatten().tolist():
        y0, y1, x0, x1 = boxes[i].tolist()
        if expand_ratio > 1.0:
            cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
            hh, hw = (y1 - y0) * expand_ratio / 2, (x1 - x0) * expand_ratio / 2
            y0, y1 = max(0, int(math.floor(cy - hh))), min(h, int(math.ceil(cy + hh)))
            x0, x1 = max(0, int(math.floor(cx - hw))), min(w, int(math.ceil(cx + hw)))
        m = masks[i, y0:y1, x0:x1]
        region = torch.where(m[None], image[:, y0:y1, x0:x1], fill_t)
        crop = F.interpolate(region[None].float(), size=size, mode='bicubic',
                             align_corners=False)[0]
        crops.append(crop.clamp_(0, 255) if clamp else crop)
        cmasks.append(F.interpolate(m[None, None].float(), size=size,
                                    mode='nearest')[0, 0] > 0.5)
    if not crops:
        return (image.new_zeros((0, 3) + size), masks.new_zeros((0, ) + size),
                valid)
    return torch.stack(crops), torch.stack(cmasks), valid


def patch_keep_mask(masks: torch.Tensor, patch: int) -> torch.Tensor:
    """OVSeg's MPT keep-mask: ``ceil(avg_pool_patch(mask))``.

    A patch is replaced by a prompt only when **all** its pixels are
    background; patches touching the mask are kept.

    Args:
        masks (Tensor): ``(N, H, W)`` bool/0-1, ``H, W`` multiples of
            ``patch`` (pad first).
        patch (int): the ViT patch size.

    Returns:
        Tensor: ``(N, gh * gw)`` float, 1 = keep the image token.
    """
    if masks.dim() != 3:
        raise ValueError(f'masks must be (N, H, W), got shape {tuple(masks.shape)}')
    pooled = F.avg_pool2d(masks.float()[:, None], kernel_size=patch, stride=patch)
    return torch.ceil(pooled).flatten(1)


@MODELS.register_module()
class MaskedCropCLIP(BaseModule):
    """CLIP image tower that embeds masked region crops (OVSeg's CLIP
    branch), with optional mask prompt tuning (MPT).

    The tower is a clipdense backbone (:class:`OpenCLIPViT` for ViT/EVA,
    :class:`OpenCLIPResNet` for CLIP ResNets) with its pooled ``'global'``
    output, so weights load from every ``pretrained=`` source (a tag, an
    open_clip file, a fine-tuned file exported from
    :class:`MaskAdaptedCLIP`).

    Mask prompt tuning (``prompt_depth > 0``) needs a ViT (open_clip
    ``VisionTransformer``): a CLIP ResNet has no patch tokens to replace
    (OVSeg only defines MPT for ViT CLIPs), and EVA (timm) towers are not
    supported. Prompts ``P`` have shape ``(depth, gh*gw, width)`` and start
    at zero (OVSeg's segmentation code; the paper says random). The input
    patch tokens become ``T * m + P[0] * (1 - m)`` (before the class token
    and positional embedding are added), and after block ``d`` (``d = 1 ..
    depth-1``) the patch tokens are replaced again with ``P[d]``.

    Args:
        arch (str): open_clip architecture.
        pretrained (str, optional): weights of the image tower.
        image_size (int, optional): crop size; default the architecture's
            (OVSeg: 224).
        prompt_depth (int): MPT depth (0 = off; OVSeg default 3).
        prompt_weights (str, optional): a file with learnt prompts
            (``{'mask_prompts': Tensor}`` or the tensor).
        freeze_tower (bool): freeze the CLIP weights (always when prompts are
            learnt: MPT trains the prompts only).
        mean, std (Sequence[float]): CLIP's normalisation (0-1 scale).
        tower_cfg (dict, optional): extra arguments of the backbone.
    """

    def __init__(self, arch: str, pretrained: Optional[str] = None, *,
                 image_size: Optional[int] = None,
                 prompt_depth: int = 0,
                 prompt_weights: Optional[str] = None,
                 freeze_tower: bool = True,
                 mean: Sequence[float] = CLIP_MEAN,
                 std: Sequence[float] = CLIP_STD,
                 tower_cfg: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        import open_clip

        from ..utils.clip_archs import register_clip_archs
        register_clip_archs()
        try:
            cfg = open_clip.get_model_config(arch.replace('/', '-'))
        except Exception:  # noqa: BLE001
            cfg = None
        if cfg is None:
            raise ValueError(f'unknown open_clip architecture {arch!r}; see '
                             'open_clip.list_models() (tests: clipdense.testing.'
                             'register_tiny_models())')
        vcfg = cfg['vision_cfg']
        is_resnet = isinstance(vcfg.get('layers'), (list, tuple))
        prompt_depth = int(prompt_depth)
        if prompt_depth < 0:
            raise ValueError(f'prompt_depth must be >= 0, got {prompt_depth}')
        if prompt_depth and is_resnet:
            raise ValueError(
                f"mask prompt tuning needs a ViT CLIP; '{arch}' is a CLIP ResNet, "
                'which has no patch tokens to replace (OVSeg defines MPT for ViTs '
                'only): set prompt_depth=0')
        extra = dict(tower_cfg or {})
        freeze = 'all' if (freeze_tower or prompt_depth) else 'none'
        if is_resnet:
            tower = dict(type='OpenCLIPResNet', arch=arch, pretrained=pretrained,
                         out_indices=(3, ), joint_outputs=('global', ), freeze=freeze)
        else:
            tower = dict(type='OpenCLIPViT', arch=arch, pretrained=pretrained,
                         out_indices=(-1, ), pyramid=False,
                         joint_outputs=('global', ), freeze=freeze)
        tower.update(extra)
        self.tower = MODELS.build(tower)
        self.is_resnet = is_resnet
        self.embed_dim = int(self.tower.embed_dim)
        self.image_size = int(image_size or (vcfg['image_size'] if isinstance(
            vcfg['image_size'], int) else vcfg['image_size'][0]))
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1) * 255,
                             persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1) * 255,
                             persistent=False)
        self.fill = tuple(255 * float(m) for m in mean)
        self.prompt_depth = prompt_depth
        if prompt_depth:
            if getattr(self.tower, 'kind', None) != 'openclip':
                raise ValueError(f"mask prompt tuning supports open_clip ViTs; '{arch}' "
                                 'is an EVA (timm) tower: set prompt_depth=0')
            depth = len(self.tower.blocks)
            if prompt_depth > depth:
                raise ValueError(f'prompt_depth={prompt_depth} exceeds the {depth} '
                                 f"blocks of '{arch}'")
            p = self.tower.patch_size
            if self.image_size % p:
                raise ValueError(f'image_size {self.image_size} must be a multiple of '
                                 f'the patch size {p} for mask prompts')
            g = self.image_size // p
            self.mask_prompts = nn.Parameter(
                torch.zeros(prompt_depth, g * g, self.tower.width))
            if prompt_weights is not None:
                self.load_prompts(prompt_weights)
        elif prompt_weights is not None:
            raise ValueError('prompt_weights given but prompt_depth=0')

    def init_weights(self):
        # the tower keeps its loaded weights; prompts start at zero
        self._is_init = True

    def load_prompts(self, path_or_tensor):
        """Load learnt prompts (a tensor, ``{'mask_prompts': T}``, or a file
        holding either)."""
        obj = path_or_tensor
        if isinstance(obj, str):
            from clipdense.fileio import safe_torch_load
            obj = safe_torch_load(obj, map_location='cpu')
        if isinstance(obj, dict):
            obj = obj.get('mask_prompts', obj.get('state_dict', {}).get('mask_prompts'))
        if not torch.is_tensor(obj) or obj.shape != self.mask_prompts.shape:
            raise ValueError('prompt weights must be a tensor of shape '
                             f'{tuple(self.mask_prompts.shape)} (or a dict with '
                             f"'mask_prompts'), got {getattr(obj, 'shape', type(obj))}")
        with torch.no_grad():
            self.mask_prompts.copy_(obj)

    # ------------------------------------------------------------------
    def normalize(self, crops: torch.Tensor) -> torch.Tensor:
        """0-255 RGB -> CLIP-normalised."""
        return (crops - self.mean) / self.std

    def crops(self, image: torch.Tensor, masks: torch.Tensor):
        """:func:`crop_with_masks` at this tower's size and fill colour,
        not clamped (as the authors, whose bicubic resize runs on the
        normalised crop)."""
        return crop_with_masks(image, masks, self.image_size, fill=self.fill, clamp=False)

    def _mpt_forward(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        t = self.tower
        v = t.visual
        x = t._pad(x)
        if masks.shape[-2:] != x.shape[-2:]:
            masks = F.pad(masks.float(), (0, x.shape[-1] - masks.shape[-1],
                                          0, x.shape[-2] - masks.shape[-2]))
        keep = patch_keep_mask(masks, t.patch_size).unsqueeze(-1).to(x.dtype)
        tokens = v.conv1(x)
        b, c, gh, gw = tokens.shape
        if gh * gw != self.mask_prompts.shape[1]:
            raise ValueError(f'mask prompts cover {self.mask_prompts.shape[1]} patches but '
                             f'the crops give {gh}x{gw}; crops must be '
                             f'{self.image_size}x{self.image_size}')
        prompts = self.mask_prompts.to(x.dtype)
        tokens = tokens.reshape(b, c, gh * gw).permute(0, 2, 1)
        tokens = tokens * keep + prompts[0] * (1 - keep)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(b, -1, -1)
        x = torch.cat([cls, tokens], dim=1) + t.pos_table(gh, gw).to(x.dtype)
        x = v.ln_pre(x)
        for i in range(len(t.blocks)):
            x = t._block(i, x, None)
            if i + 1 < self.prompt_depth:
                patch = x[:, 1:] * keep + prompts[i + 1] * (1 - keep)
                x = torch.cat([x[:, :1], patch], dim=1)
        return t._global(x)

    def forward(self, crops: torch.Tensor,
                crop_masks: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Embed crops.

        Args:
            crops (Tensor): ``(N, 3, S, S)`` 0-255 RGB crops (from
                :meth:`crops`).
            crop_masks (Tensor, optional): ``(N, S, S)`` masks; required with
                mask prompts.

        Returns:
            Tensor: ``(N, D)`` L2-normalised embeddings.
        """
        if crops.dim() != 4 or crops.shape[1] != 3:
            raise ValueError(f'crops must be (N, 3, S, S), got {tuple(crops.shape)}')
        if crops.shape[0] == 0:
            return crops.new_zeros((0, self.embed_dim))
        x = self.normalize(crops)
        if self.prompt_depth:
            if crop_masks is None:
                raise ValueError('mask prompt tuning needs crop_masks (N, S, S)')
            emb = self._mpt_forward(x, crop_masks)
        else:
            emb = self.tower(x)[-1]['global']
        return F.normalize(emb.float(), dim=-1)

    def classify(self, image: torch.Tensor, masks: torch.Tensor,
                 text_embeds: torch.Tensor, logit_scale: float = 100.0):
        """Logits of every mask of one image against ``text_embeds``.

        Args:
            image (Tensor): ``(3, H, W)`` 0-255 RGB.
            masks (Tensor): ``(Q, H, W)`` bool.
            text_embeds (Tensor): ``(K, D)`` L2-normalised.

        Returns:
            tuple: ``logits (Q, K)`` (zeros for empty masks) and ``valid (Q,)``.
        """
        crops, cmasks, valid = self.crops(image, masks)
        logits = text_embeds.new_zeros((masks.shape[0], text_embeds.shape[0]))
        if crops.shape[0]:
            emb = self(crops, cmasks)
            logits[valid] = logit_scale * emb.to(text_embeds.dtype) @ text_embeds.t()
        return logits, valid
