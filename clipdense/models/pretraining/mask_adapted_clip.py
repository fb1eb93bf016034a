"""Mask-adapted CLIP (OVSeg, Liang et al., CVPR 2023, Sec. 3.2-3.3):
contrastive training on (masked crop, noun) pairs with the text tower
frozen, by fine-tuning the image tower and/or learning mask prompts.

Fine-tuning alone is :class:`ContrastiveCLIP` with ``freeze_text=True`` on a
:class:`CaptionDataset` of mined crops (the "caption" of a crop is its
noun). :class:`MaskPromptCLIP` learns mask prompts (ViT towers only) with
the whole CLIP frozen; the mask of each crop is recovered from its pixels
as OVSeg's ``Maskget`` does: the background was stored losslessly with the
colour :data:`OVSEG_STORED_FILL` = (124, 116, 103), the authors' value.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from clipdense.registry import MODELS
from ..region_classifiers.masked_crop_clip import CLIP_MEAN, CLIP_STD, patch_keep_mask
from .contrastive_clip import ContrastiveCLIP


# The background colour of stored (mined) crops, as OVSeg's CLIP-adaptation
# code reads it back: ``open_clip_training/src/open_clip/transform.py``,
# ``Maskget(mean=(124, 116, 103))`` marks a pixel as background when all
# three uint8 channels equal this colour exactly. It is not
# ``round(255 * CLIP_MEAN)`` = (123, 117, 104): crops must be written with
# this colour (``store_crop_with_fill``) for the prompts to see them.
OVSEG_STORED_FILL = (124, 116, 103)


def masks_from_filled_crops(inputs: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                            fill: Sequence[int] = OVSEG_STORED_FILL) -> torch.Tensor:
    """Foreground masks of normalised crops, OVSeg's ``Maskget`` rule.

    A pixel is background iff its three (uint8) channels equal ``fill``
    exactly; the de-normalised values are rounded first, which undoes the
    float error of the normalisation and nothing else (a uint8 image gives
    back its own values). As in the authors' pipeline the rule is applied
    after resizing, so resampled pixels next to the mask, whose colour is
    blended, count as foreground.

    Args:
        inputs (Tensor): ``(N, 3, H, W)`` normalised with ``mean``/``std``
            (0-255 scale, ``(1, 3, 1, 1)`` or ``(3, 1, 1)``).
        fill (Sequence[int]): the stored background colour, RGB (default
            :data:`OVSEG_STORED_FILL`, the authors' value).

    Returns:
        Tensor: ``(N, H, W)`` bool, True = foreground.
    """
    if inputs.dim() != 4 or inputs.shape[1] != 3:
        raise ValueError(f'inputs must be (N, 3, H, W), got shape {tuple(inputs.shape)}')
    fill = [int(c) for c in fill]
    if len(fill) != 3 or not all(0 <= c <= 255 for c in fill):
        raise ValueError(f'fill must be 3 uint8 values (RGB), got {fill}')
    mean = mean.reshape(1, 3, 1, 1).to(inputs)
    std = std.reshape(1, 3, 1, 1).to(inputs)
    pix = (inputs.float() * std.float() + mean.float()).round()
    fill_t = torch.tensor(fill, device=inputs.device, dtype=pix.dtype).view(1, 3, 1, 1)
    return ~(pix == fill_t).all(dim=1)


def store_crop_with_fill(crop: torch.Tensor, mask: torch.Tensor,
                         fill: Sequence[int] = OVSEG_STORED_FILL) -> torch.Tensor:
    """A crop as it is stored for CLIP adaptation: uint8 RGB ``(H, W, 3)``
    whose pixels outside ``mask`` are exactly ``fill``.

    Args:
        crop (Tensor): ``(3, H, W)`` 0-255 float or uint8.
        mask (Tensor): ``(H, W)`` bool, True = foreground.
    """
    if crop.dim() != 3 or crop.shape[0] != 3 or mask.shape != crop.shape[-2:]:
        raise ValueError(f'crop must be (3, H, W) and mask (H, W), got {tuple(crop.shape)} '
                         f'and {tuple(mask.shape)}')
    out = crop.float().round().clamp(0, 255).byte()
    fill_t = torch.tensor([int(c) for c in fill], dtype=torch.uint8,
                          device=crop.device).view(3, 1, 1)
    out = torch.where(mask.bool()[None], out, fill_t)
    return out.permute(1, 2, 0).contiguous()


def deduplicated_clip_loss(img: torch.Tensor, txt: torch.Tensor, captions: List[str],
                           scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where crops with the same noun share one text.

    Rows of the text side are the *unique* captions of the batch; an image
    is positive with its caption's row (image->text CE), and each unique
    caption's positives are all images carrying it (text->image: the mean
    CE over those images). With a small noun vocabulary this removes the
    false negatives the plain CLIP loss makes of repeated nouns (an OVSeg
    gotcha, their Sec. 3.2 batch has 12K nouns; the synthetic world has 13).
    """
    uniq = sorted(set(captions))
    index = {c: i for i, c in enumerate(uniq)}
    target = torch.tensor([index[c] for c in captions], device=img.device)
    first = [captions.index(c) for c in uniq]
    t = txt[first]
    logits = scale * img @ t.t()  # (B, U)
    loss_i = F.cross_entropy(logits, target)
    log_p = (scale * t @ img.t()).log_softmax(dim=1)  # (U, B)
    pos = F.one_hot(target, len(uniq)).t().float()  # (U, B)
    loss_t = -(log_p * pos).sum(1).div(pos.sum(1)).mean()
    return (loss_i + loss_t) / 2


@MODELS.register_module()
class MaskAdaptedCLIP(ContrastiveCLIP):
    """CLIP fine-tuning on (masked crop, noun) pairs with the text tower
    frozen (OVSeg's "FT"); ``dedup_nouns=True`` uses
    :func:`deduplicated_clip_loss` instead of the plain CLIP loss (OVSeg
    uses the plain one).

    Args:
        dedup_nouns (bool): merge repeated nouns of a batch.
        **kwargs: :class:`ContrastiveCLIP` arguments (``freeze_text`` is
            forced on).
    """

    def __init__(self, model_name: str, *, dedup_nouns: bool = False, **kwargs):
        kwargs['freeze_text'] = True
        super().__init__(model_name, **kwargs)
        self.dedup_nouns = bool(dedup_nouns)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode != 'loss' or not self.dedup_nouns:
            return super().forward(inputs, data_samples, mode)
        captions = self._captions(data_samples)
        img, txt = self.encode(inputs, captions)
        scale = self.clip.logit_scale.exp()
        loss = deduplicated_clip_loss(img, txt, captions, scale)
        return dict(loss_contrastive=loss, logit_scale=scale.detach())


@MODELS.register_module()
class MaskPromptCLIP(ContrastiveCLIP):
    """Mask prompt tuning (OVSeg's MPT) through the contrastive trainer.

    The CLIP model (both towers, and the logit scale) is frozen; only
    ``mask_prompts`` ``(depth, grid*grid, width)`` are learnt. The image
    tower must be an open_clip ``VisionTransformer`` (a CLIP ResNet has no
    patch tokens: MPT does not apply to it).

    Args:
        prompt_depth (int): prompted blocks (OVSeg: 3).
        **kwargs: :class:`ContrastiveCLIP` arguments.
    """

    def __init__(self, model_name: str, *, prompt_depth: int = 3, **kwargs):
        kwargs['freeze_text'] = True
        super().__init__(model_name, **kwargs)
        from open_clip.transformer import VisionTransformer
        v = self.clip.visual
        if not isinstance(v, VisionTransformer):
            raise ValueError(f"mask prompt tuning needs a ViT CLIP; '{model_name}' has a "
                             f'{type(v).__name__} image tower (a CLIP ResNet has no patch '
                             'tokens to replace): fine-tune with ContrastiveCLIP instead')
        depth = len(v.transformer.resblocks)
        if not 1 <= int(prompt_depth) <= depth:
            raise ValueError(f'prompt_depth must be in [1, {depth}], got {prompt_depth}')
        for p in self.clip.parameters():
            p.requires_grad_(False)
        gh, gw = v.grid_size
        self.prompt_depth = int(prompt_depth)
        self.patch_size = int(v.patch_size[0] if isinstance(v.patch_size, (tuple, list))
                              else v.patch_size)
        self.mask_prompts = torch.nn.Parameter(
            torch.zeros(self.prompt_depth, gh * gw, v.transformer.width))

    def _encode_image(self, inputs: torch.Tensor) -> torch.Tensor:
        v = self.clip.visual
        dp = self.data_preprocessor
        masks = masks_from_filled_crops(inputs, dp.mean, dp.std)
        keep = patch_keep_mask(masks, self.patch_size).unsqueeze(-1).to(inputs.dtype)
        x = v.conv1(inputs)
        b, c, gh, gw = x.shape
        x = x.reshape(b, c, gh * gw).permute(0, 2, 1)
        x = x * keep + self.mask_prompts[0] * (1 - keep)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(b, -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.ln_pre(x)
        batch_first = getattr(v.transformer, 'batch_first', True)
        for i, blk in enumerate(v.transformer.resblocks):
            x = blk(x) if batch_first else blk(x.transpose(0, 1)).transpose(0, 1)
            if i + 1 < self.prompt_depth:
                x = torch.cat([x[:, :1], x[:, 1:] * keep + self.mask_prompts[i + 1] * (1 - keep)],
                              dim=1)
        pooled, _ = v._pool(x)
        return pooled @ v.proj if v.proj is not None else pooled

    def encode(self, inputs: torch.Tensor, captions: List[str]):
        tokens = self.tokenizer(captions).to(inputs.device)
        img = self._encode_image(inputs)
        with torch.no_grad():
            txt = self.clip.encode_text(tokens)
        return F.normalize(img.float(), dim=-1), F.normalize(txt.float(), dim=-1)

    def prompt_state(self) -> dict:
        """``{'mask_prompts': Tensor}``, the file :class:`MaskedCropCLIP`'s
        ``prompt_weights`` reads."""
        return {'mask_prompts': self.mask_prompts.detach().cpu().clone()}


def mask_adapted_clip_config(model_name: str, pretrained: Optional[str], ann_file: str,
                             data_root: str, *, image_size: int, epochs: int = 5,
                             batch_size: int = 32, lr: float = 5e-6,
                             weight_decay: float = 0.2, prompt_depth: int = 0,
                             work_dir: str = 'work_dirs/ovseg/adapt',
                             max_iters: Optional[int] = None,
                             dedup_nouns: bool = False) -> dict:
    """A runner config for OVSeg's CLIP adaptation on mined pairs.

    ``prompt_depth=0``: fine-tuning of the image tower (``MaskAdaptedCLIP``,
    text frozen; OVSeg: lr 5e-6, wd 0.2, 5 epochs). ``> 0``: mask prompt
    tuning (``MaskPromptCLIP``; OVSeg: lr 2e-2, wd 0).
    """
    clip_mean = [m * 255 for m in CLIP_MEAN]
    clip_std = [s * 255 for s in CLIP_STD]
    model = dict(type='MaskPromptCLIP' if prompt_depth else 'MaskAdaptedCLIP',
                 model_name=model_name, pretrained=pretrained,
                 data_preprocessor=dict(type='ImgDataPreprocessor', mean=clip_mean,
                                        std=clip_std, bgr_to_rgb=True))
    if prompt_depth:
        model['prompt_depth'] = prompt_depth
    else:
        model['dedup_nouns'] = dedup_nouns
    train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs) if max_iters is None \
        else dict(type='IterBasedTrainLoop', max_iters=max_iters)
    return dict(
        default_scope='clipdense',
        work_dir=work_dir,
        model=model,
        train_dataloader=dict(
            batch_size=batch_size, num_workers=0, persistent_workers=False,
            sampler=dict(type='DefaultSampler' if max_iters is None else 'InfiniteSampler',
                         shuffle=True),
            collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='CaptionDataset', data_root=data_root, ann_file=ann_file,
                         pipeline=[dict(type='LoadImageFromFile'),
                                   dict(type='Resize', scale=(image_size, image_size),
                                        keep_ratio=False),
                                   dict(type='PackCaptionInputs')])),
        train_cfg=train_cfg,
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='AdamW', lr=lr, weight_decay=weight_decay,
                                          betas=(0.9, 0.98), eps=1e-6),
                           clip_grad=dict(max_norm=1.0)),
        default_hooks=dict(timer=dict(type='IterTimerHook'),
                           logger=dict(type='LoggerHook', interval=20),
                           param_scheduler=dict(type='ParamSchedulerHook'),
                           checkpoint=dict(type='CheckpointHook', interval=10 ** 6,
                                           save_last=False),
                           sampler_seed=dict(type='DistSamplerSeedHook')),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl')),
        randomness=dict(seed=0),
        log_level='WARNING',
        load_from=None,
        resume=False)
