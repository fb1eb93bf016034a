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
import copy
import math
from typing import List, Optional, Sequence, Tuple, Union

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
        max_logit_scale (float, optional): the logit scale (log space) is
            clamped to ``[0, max_logit_scale]`` before each training step,
            i.e. after the previous one (the authors clamp after each step
            to ``ln 100``, the default); None: no clamp.
        **kwargs: :class:`ContrastiveCLIP` arguments (``freeze_text`` is
            forced on).
    """

    def __init__(self, model_name: str, *, dedup_nouns: bool = False,
                 max_logit_scale: Optional[float] = math.log(100), **kwargs):
        kwargs['freeze_text'] = True
        super().__init__(model_name, **kwargs)
        self.dedup_nouns = bool(dedup_nouns)
        self.max_logit_scale = max_logit_scale

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss' and self.max_logit_scale is not None:
            with torch.no_grad():
                self.clip.logit_scale.clamp_(0, self.max_logit_scale)
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
        prompt_init_std (float): the prompts start from ``N(0, std)``
            (the authors' training code: 0.02, their ``'mae'`` init); 0 starts
            from zeros (the segmentation-side default of their code).
        **kwargs: :class:`ContrastiveCLIP` arguments.
    """

    def __init__(self, model_name: str, *, prompt_depth: int = 3,
                 prompt_init_std: float = 0.02, **kwargs):
        kwargs['freeze_text'] = True
        if kwargs.get('object_loss_weight'):
            raise ValueError('MaskPromptCLIP: the object-token loss is not '
                             'implemented with mask prompts; leave '
                             'object_loss_weight at 0')
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
        if prompt_init_std < 0:
            raise ValueError(f'prompt_init_std must be >= 0, got {prompt_init_std}')
        if prompt_init_std > 0:
            torch.nn.init.normal_(self.mask_prompts, std=float(prompt_init_std))

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


def count_records(ann_file: str, data_root: str = '') -> int:
    """Records (non-empty lines) of a JSON-lines annotation file."""
    import os.path as osp
    path = ann_file if osp.isabs(ann_file) or not data_root else osp.join(data_root, ann_file)
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file {path} not found; pass num_samples= (the '
                                'number of mined pairs) to build the schedule without it')
    with open(path, encoding='utf-8') as f:
        return sum(1 for line in f if line.strip())


def ovseg_adaptation_schedule(total_iters: int, warmup_iters: int = 100) -> list:
    """OVSeg's CLIP-adaptation learning rate (open_clip's ``cosine_lr``):
    linear warm-up over ``warmup_iters`` steps, then cosine to 0 at
    ``total_iters``, stepped every iteration. (open_clip's warm-up is
    ``lr * (i + 1) / warmup``; mmengine's ``LinearLR`` from ``1 / warmup``
    differs from it by less than ``lr / warmup``.)"""
    total_iters, warmup_iters = int(total_iters), int(warmup_iters)
    if total_iters <= 0:
        raise ValueError(f'total_iters must be positive, got {total_iters}')
    warmup_iters = min(warmup_iters, total_iters)
    sched = []
    if warmup_iters > 0:
        sched.append(dict(type='LinearLR', start_factor=1.0 / warmup_iters, end_factor=1.0,
                          by_epoch=False, begin=0, end=warmup_iters))
    if total_iters > warmup_iters:
        sched.append(dict(type='CosineAnnealingLR', T_max=total_iters - warmup_iters,
                          eta_min=0.0, by_epoch=False, begin=warmup_iters, end=total_iters))
    return sched


# OVSeg's no-decay rule (open_clip_training/src/training/main.py): weight decay
# 0 for parameters with fewer than 2 dimensions (norm gains, biases, the class
# embedding) and for the logit scale.
OVSEG_ADAPT_PARAMWISE = dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                             custom_keys={'logit_scale': dict(decay_mult=0.0)})


def mask_adapted_clip_config(model_name: str, pretrained: Optional[str], ann_file: str,
                             data_root: str, *, image_size: int, epochs: int = 5,
                             batch_size: int = 32, lr: Optional[float] = None,
                             weight_decay: Optional[float] = None, prompt_depth: int = 0,
                             work_dir: str = 'work_dirs/ovseg/adapt',
                             max_iters: Optional[int] = None,
                             dedup_nouns: bool = False,
                             num_samples: Optional[int] = None,
                             schedule: str = 'cosine', warmup_iters: int = 100,
                             amp: Union[bool, str] = 'auto',
                             grad_clip: Optional[float] = None,
                             crop_scale: Optional[Tuple[float, float]] = (0.9, 1.0),
                             no_decay_norm_bias: bool = True) -> dict:
    """A runner config for OVSeg's CLIP adaptation on mined pairs.

    The defaults are the authors' recipe (``open_clip_training``: the
    ``coco_proposal_1cap_{finetune,mask_prompt_tuning}_VitL.sh`` scripts and
    ``training/main.py``): AdamW (0.9, 0.98, eps 1e-6); weight decay 0.2
    except on norms, biases, other 1-D parameters and the logit scale
    (:data:`OVSEG_ADAPT_PARAMWISE`); 100 warm-up steps then cosine to 0
    (:func:`ovseg_adaptation_schedule`); mixed precision; no gradient
    clipping; ``RandomResizedCrop(scale=(0.9, 1.0))`` bicubic; the last
    incomplete batch dropped; the logit scale clamped to ``[0, ln 100]``.

    ``prompt_depth=0``: fine-tuning of the image tower (``MaskAdaptedCLIP``,
    text frozen; lr 5e-6, wd 0.2, 5 epochs). ``> 0``: mask prompt tuning
    (``MaskPromptCLIP``; lr 0.05 as the released script, the paper says
    2e-2; wd 0).

    Args:
        lr, weight_decay (float, optional): default the authors' per mode.
        num_samples (int, optional): mined pairs, for the schedule's length
            (default: counted in ``ann_file``).
        max_iters (int, optional): an iteration-based run instead of epochs.
        schedule (str): ``'cosine'`` (authors) or ``'constant'``.
        warmup_iters (int): linear warm-up steps (authors: 100).
        amp (bool | str): mixed precision (``AmpOptimWrapper``, fp16 with a
            dynamic loss scale, as the authors' ``--precision amp``);
            ``'auto'``: when CUDA is available (mmengine's AMP wrapper is
            CUDA-only).
        grad_clip (float, optional): max gradient norm (authors: none).
        crop_scale (tuple, optional): ``CLIPRandomResizedCrop`` area range
            (authors: (0.9, 1.0)); None: a plain resize.
        no_decay_norm_bias (bool): the authors' no-decay groups; False
            decays every parameter.
    """
    import torch
    clip_mean = [m * 255 for m in CLIP_MEAN]
    clip_std = [s * 255 for s in CLIP_STD]
    if schedule not in ('cosine', 'constant'):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    if lr is None:
        lr = 0.05 if prompt_depth else 5e-6
    if weight_decay is None:
        weight_decay = 0.0 if prompt_depth else 0.2
    model = dict(type='MaskPromptCLIP' if prompt_depth else 'MaskAdaptedCLIP',
                 model_name=model_name, pretrained=pretrained,
                 data_preprocessor=dict(type='ImgDataPreprocessor', mean=clip_mean,
                                        std=clip_std, bgr_to_rgb=True))
    if prompt_depth:
        model['prompt_depth'] = prompt_depth
    else:
        model['dedup_nouns'] = dedup_nouns
    if max_iters is None:
        train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
        if num_samples is None:
            num_samples = count_records(ann_file, data_root)
        if int(num_samples) < int(batch_size):
            raise ValueError(f'{num_samples} training pairs for a batch of {batch_size}: the '
                             'last incomplete batch is dropped (as the authors), so no step '
                             'would run; lower batch_size')
        total_iters = max(1, int(num_samples) // int(batch_size)) * int(epochs)
    else:
        train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
        total_iters = int(max_iters)
    param_scheduler = ovseg_adaptation_schedule(total_iters, warmup_iters) \
        if schedule == 'cosine' else []
    if amp == 'auto':
        amp = torch.cuda.is_available()
    resize = dict(type='CLIPRandomResizedCrop', size=image_size, scale=tuple(crop_scale),
                  interpolation='bicubic') if crop_scale is not None else \
        dict(type='Resize', scale=(image_size, image_size), keep_ratio=False,
             interpolation='bicubic')
    optim_wrapper = dict(type='AmpOptimWrapper' if amp else 'OptimWrapper',
                         optimizer=dict(type='AdamW', lr=lr, weight_decay=weight_decay,
                                        betas=(0.9, 0.98), eps=1e-6))
    if no_decay_norm_bias:
        optim_wrapper['paramwise_cfg'] = copy.deepcopy(OVSEG_ADAPT_PARAMWISE)
    if grad_clip is not None:
        optim_wrapper['clip_grad'] = dict(max_norm=float(grad_clip))
    return dict(
        default_scope='clipdense',
        work_dir=work_dir,
        model=model,
        train_dataloader=dict(
            batch_size=batch_size, num_workers=0, persistent_workers=False,
            drop_last=max_iters is None,
            sampler=dict(type='DefaultSampler' if max_iters is None else 'InfiniteSampler',
                         shuffle=True),
            collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='CaptionDataset', data_root=data_root, ann_file=ann_file,
                         pipeline=[dict(type='LoadImageFromFile'), resize,
                                   dict(type='PackCaptionInputs')])),
        train_cfg=train_cfg,
        optim_wrapper=optim_wrapper,
        param_scheduler=param_scheduler,
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
