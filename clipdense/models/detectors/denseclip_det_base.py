"""What DenseCLIP adds to an mmdet detector (shared by RetinaNet and Mask
R-CNN): the language-guided C5 and the auxiliary segmentation loss."""
import copy
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from clipdense.registry import MODELS
from ..necks import context_decoder  # noqa: F401  (registers ContextDecoder)
from ..utils.pixel_text import (boxes_to_class_masks, pixel_text_score_map,
                                visual_context)


class _Features:
    """Neck features computed by :meth:`DenseCLIPDetMixin.loss` and handed
    through mmdet's ``loss`` (which only passes its input to
    ``extract_feat``), so that mmdet's own loss code runs unchanged."""

    __slots__ = ('feats', )

    def __init__(self, feats):
        self.feats = feats


class DenseCLIPDetMixin:
    """DenseCLIP for detection (Rao et al., CVPR 2022, Sec. 3.4 and the
    authors' ``DenseCLIP_RetinaNet`` / ``DenseCLIP_MaskRCNN``).

    Mixed into an mmdet detector before the mmdet class; the detector's
    ``backbone`` must be an :class:`OpenCLIPResNet` (the authors') or an
    :class:`OpenCLIPViT` (clipdense's extension: DenseCLIP's detection
    experiments used ResNets only) with ``joint_outputs=('global',
    'dense')``. Per image:

    1. text embeddings ``t (K, D)`` of the vocabulary with ``num_contexts``
       learnable context tokens (``contexts``, owned by the detector as by
       the DenseCLIP segmentor, so that the paper's ``lr_mult=0`` on
       ``text_encoder`` freezes the CLIP text tower but not the prompts),
       through ``text_encoder``, an :class:`OpenCLIPContextTextEncoder`
       built with ``num_contexts=0``;
    2. post-model prompting: ``t <- t + gamma * ContextDecoder(t, [g, z])``
       with the global and dense embeddings as visual context and a
       per-channel ``gamma`` initialised to ``gamma_init`` (1e-4);
    3. the pixel-text score map ``s = cos(z, t)`` ``(B, K, h5, w5)``;
       ``s / tau`` is concatenated to the backbone level
       ``score_concat_index`` whose stride is the dense embeddings' (C5,
       the last level, for ResNets: the neck's last ``in_channels`` is
       C5 + K, 2048 + 80 for RN50 on COCO; for a ViT pyramid the stride-
       ``patch`` level, index 2);
    4. with ``seg_loss=True``, ``loss_aux_seg``: binary cross-entropy of
       the sigmoid of ``s / tau`` upsampled (bilinear) to stride 4 against
       class masks rasterised from the ground-truth boxes, averaged over
       the in-box cells (summed over classes and in-box cells, divided by
       ``K`` x their number, as the authors' code), times
       ``seg_loss_weight``. Box corners become cells by
       ``seg_target_rounding``: ``'cover'`` (clipdense: floor/ceil, every
       box covers a cell) or ``'truncate'`` (the authors' rule; see
       :func:`~clipdense.models.utils.pixel_text.boxes_to_class_masks`).

    The context decoder, the context text encoder, the contexts/gamma
    layout and the score map (:mod:`clipdense.models.utils.pixel_text`) are
    those of the DenseCLIP segmentor (:class:`DenseCLIPSegmentor`); the
    context decoder's dimensions are filled in (all = ``D``) when unset.

    At inference (no grad) the text embeddings, which do not depend on the
    image, are computed once per vocabulary and weights, not per image.

    The DenseCLIP arguments of both detectors (keywords, passed on to
    :meth:`_init_denseclip`):

    Args:
        text_encoder (dict): ``clipdense.OpenCLIPContextTextEncoder``
            (``num_contexts`` left at 0: the detector owns the contexts).
        context_decoder (dict): ``clipdense.ContextDecoder``; its
            dimensions default to the joint-space dimension D.
        vocabulary (Sequence[str], optional): class names in label order
            (default: the text encoder's).
        num_contexts (int): learnable context tokens (DenseCLIP: 8).
        context_init_std (float): std of their truncated-normal init
            (0.02; the authors' code: torch's default 1.0).
        tau (float): temperature of the score map (0.07).
        gamma_init (float): initial per-channel residual scale (1e-4).
        seg_loss (bool): add ``loss_aux_seg`` (the authors' configs: True).
        seg_loss_weight (float): its weight.
        seg_target_rounding (str): ``'cover'`` or ``'truncate'`` (the
            authors'); how boxes become cells of the loss's target.
        score_concat_index (int): backbone level that receives the score
            map; its stride must be the dense embeddings' (32 for CLIP
            ResNets, the patch size for ViTs). Default -1: the last level
            (C5, the authors' ResNet detectors).
    """

    def _init_denseclip(self, text_encoder: dict, context_decoder: dict, *,
                        head_classes: dict,
                        vocabulary: Optional[Sequence[str]] = None,
                        num_contexts: int = 8, context_init_std: float = 0.02,
                        tau: float = 0.07, gamma_init: float = 1e-4,
                        seg_loss: bool = False, seg_loss_weight: float = 1.0,
                        seg_target_rounding: str = 'cover',
                        score_concat_index: int = -1):
        name = type(self).__name__
        self._check_backbone(score_concat_index)
        text_encoder = copy.deepcopy(dict(text_encoder))
        if text_encoder.get('num_contexts', 0):
            raise ValueError(
                f'set model.num_contexts, not model.text_encoder.num_contexts: '
                f'{name} owns the learnable contexts (as the DenseCLIP segmentor), '
                'so that lr_mult=0 on text_encoder freezes the tower, not the prompts')
        text_encoder['num_contexts'] = 0
        self.text_encoder = MODELS.build(text_encoder)
        d = int(self.backbone.embed_dim)
        context_decoder = copy.deepcopy(dict(context_decoder))
        for key in ('query_dim', 'visual_dim', 'out_dim'):
            # post-model prompting: text queries, image memory, text-sized output
            if context_decoder.get(key) is None:
                context_decoder[key] = d
        self.context_decoder = MODELS.build(context_decoder)
        if vocabulary is None:
            vocabulary = getattr(self.text_encoder, 'vocabulary', None)
        if vocabulary is None:
            raise ValueError(
                f'{name}: no vocabulary; set `vocabulary` (the dataset\'s class '
                'names, in label order) on the detector or the text encoder')
        from ..open_vocab import check_vocabulary
        self.vocabulary = check_vocabulary(vocabulary, self.text_encoder).names
        if tau <= 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        self.tau = float(tau)
        self.seg_loss = bool(seg_loss)
        self.seg_loss_weight = float(seg_loss_weight)
        if seg_target_rounding not in ('cover', 'truncate'):
            raise ValueError("seg_target_rounding must be 'cover' (clipdense) or "
                             f"'truncate' (the authors'), got {seg_target_rounding!r}")
        self.seg_target_rounding = seg_target_rounding
        self._check_parts(head_classes)
        enc = self.text_encoder
        self.num_contexts = int(num_contexts)
        if self.num_contexts < 1 or \
                self.num_contexts + enc.class_context_length > enc.context_length:
            raise ValueError(
                f'{name}: num_contexts must be >= 1 and num_contexts + '
                f'class_context_length ({self.num_contexts} + '
                f'{enc.class_context_length}) at most the text context '
                f'({enc.context_length})')
        self.contexts = nn.Parameter(
            torch.empty(1, self.num_contexts, enc.token_embed_dim))
        trunc_normal_(self.contexts, std=context_init_std)
        self.gamma = nn.Parameter(torch.full((enc.embed_dim, ), float(gamma_init)))
        from ..utils.text_cache import TextEmbeddingCache
        self._text_cache = TextEmbeddingCache(1)

    # ------------------------------------------------------------------
    def _check_backbone(self, score_concat_index: int):
        name = type(self).__name__
        bb = self.backbone
        joint = tuple(getattr(bb, 'joint_outputs', ()))
        if not {'global', 'dense'} <= set(joint) or not hasattr(bb, 'embed_dim'):
            raise ValueError(
                f"{name}: the backbone must give CLIP's global and dense "
                "embeddings: use clipdense.OpenCLIPResNet or clipdense.OpenCLIPViT "
                f"with joint_outputs=('global', 'dense') (got {joint})")
        strides = list(getattr(bb, 'strides', []))
        n = len(strides)
        if not -n <= score_concat_index < n:
            raise ValueError(f'{name}: score_concat_index={score_concat_index} but the '
                             f'backbone returns {n} levels')
        self.score_concat_index = score_concat_index % n
        # the dense embeddings' stride: the patch for ViTs, C5's (32) for CLIP ResNets
        dense_stride = getattr(bb, 'patch_size', None) or 32
        if strides[self.score_concat_index] != dense_stride:
            fix = (f'score_concat_index={strides.index(dense_stride)}'
                   if dense_stride in strides else
                   'out_indices ending with 3 (C5)' if not hasattr(bb, 'patch_size')
                   else 'pyramid=True or taps at the patch stride')
            raise ValueError(
                f'{name}: the score map has the dense embeddings\' stride '
                f'({dense_stride}) but backbone level {score_concat_index} has stride '
                f'{strides[self.score_concat_index]} (strides {strides}); use {fix}')

    def _check_parts(self, head_classes: dict):
        """Fail at build time, with the fix, when the parts disagree."""
        name = type(self).__name__
        bb = self.backbone
        k = len(self.vocabulary)
        d = bb.embed_dim
        te, cd = self.text_encoder, self.context_decoder
        if te.embed_dim != d:
            raise ValueError(f'{name}: text embeddings have {te.embed_dim} channels, '
                             f'image embeddings {d}: use the same CLIP arch for both')
        dims = [getattr(cd, a, d) for a in ('query_dim', 'visual_dim', 'out_dim')]
        if dims != [d, d, d]:
            raise ValueError(
                f'{name}: context_decoder (query_dim, visual_dim, out_dim) = '
                f'{tuple(dims)}; post-model prompting needs all three = {d}')
        i = self.score_concat_index
        expected = list(bb.out_channels)
        c = expected[i]
        expected[i] = c + k
        neck_in = getattr(self.neck, 'in_channels', None) if self.with_neck else None
        if neck_in is not None and list(neck_in) != expected:
            last = i == len(expected) - 1
            level = 'the last neck input is C5' if last else f'neck input {i} is level {i}'
            raise ValueError(
                f'{name}: {level} ({c}) + the score map ({k} classes) = {c + k} '
                f'channels, the neck.in_channels should be {expected} but are '
                f'{list(neck_in)}; set in_channels[{i if not last else -1}] to {c} + {k}')
        for where, n in head_classes.items():
            if n is not None and n != k:
                raise ValueError(
                    f'{name}: {where}.num_classes = {n} but the vocabulary has {k} '
                    f'names; make them agree (num_classes follows the vocabulary)')

    # ------------------------------------------------------------------
    def text_embeddings(self) -> torch.Tensor:
        """Class text embeddings with the learnable contexts, ``(1, K, D)``.

        Computed per forward while a gradient is wanted (the contexts
        learn); otherwise cached, keyed by the vocabulary, the contexts'
        storage and version and the text tower's weights (any change, e.g.
        an optimizer step or a checkpoint load, recomputes).
        """
        te = self.text_encoder
        ctx = self.contexts
        trainable = torch.is_grad_enabled() and (ctx.requires_grad or any(
            p.requires_grad for p in te.tower_parameters()))
        if trainable:
            self._text_cache.clear()
        key = (self.vocabulary, te.weights_key(),
               (ctx.data_ptr(), ctx._version, ctx.device, ctx.dtype))
        # the same cache as the segmentor's: computed under no_grad, a copy returned
        return self._text_cache.get(key, lambda: te(self.vocabulary, context=ctx),
                                    trainable=trainable)

    def score_map(self, global_embed: torch.Tensor,
                  dense_embed: torch.Tensor) -> torch.Tensor:
        """Context-aware pixel-text scores ``s`` (cosines, not divided by
        tau), ``(B, K, h, w)``."""
        b = dense_embed.shape[0]
        text = self.text_embeddings().expand(b, -1, -1)
        diff = self.context_decoder(text, visual_context(global_embed, dense_embed))
        text = text + self.gamma.to(diff.dtype) * diff
        return pixel_text_score_map(dense_embed, text)

    def extract_feat_and_score(self, batch_inputs: torch.Tensor):
        """Neck features and the scaled score map ``s / tau``.

        Returns:
            tuple: neck outputs (tuple of ``(B, C, H_l, W_l)``) and the
            score map ``(B, K, h, w)`` at the dense embeddings' grid
            (``H/32`` for ResNets, ``H/patch`` for ViTs) divided by ``tau``.
        """
        *feats, joint = self.backbone(batch_inputs)
        score = self.score_map(joint['global'], joint['dense']) / self.tau
        i = self.score_concat_index
        if feats[i].shape[-2:] != score.shape[-2:]:
            raise ValueError(
                f'{type(self).__name__}: backbone level {i} is '
                f'{tuple(feats[i].shape[-2:])} but the score map '
                f'{tuple(score.shape[-2:])}; set score_concat_index to the level at '
                'the dense embeddings\' stride')
        feats[i] = torch.cat([feats[i], score.to(feats[i].dtype)], dim=1)
        if self.with_neck:
            feats = self.neck(feats)
        return tuple(feats), score

    def extract_feat(self, batch_inputs):
        if isinstance(batch_inputs, _Features):
            return batch_inputs.feats
        return self.extract_feat_and_score(batch_inputs)[0]

    # ------------------------------------------------------------------
    def aux_seg_loss(self, score: torch.Tensor, batch_data_samples,
                     input_shape) -> torch.Tensor:
        """DenseCLIP's auxiliary segmentation loss for detection.

        Args:
            score (Tensor): ``s / tau`` ``(B, K, h5, w5)``.
            batch_data_samples (list[DetDataSample]): with
                ``gt_instances.bboxes`` / ``labels`` in input pixels.
            input_shape (tuple[int, int]): padded batch input ``(H, W)``.

        Returns:
            Tensor: scalar; zero (still in the graph) when no image of the
            batch has a box.
        """
        h, w = max(int(input_shape[0]) // 4, 1), max(int(input_shape[1]) // 4, 1)
        logits = F.interpolate(score, size=(h, w), mode='bilinear',
                               align_corners=False)
        boxes = [ds.gt_instances.bboxes for ds in batch_data_samples]
        boxes = [getattr(b, 'tensor', b).to(score.device) for b in boxes]
        labels = [ds.gt_instances.labels.to(score.device) for ds in batch_data_samples]
        target, in_box = boxes_to_class_masks(
            boxes, labels, score.shape[1], (h, w),
            (input_shape[0] / h, input_shape[1] / w), self.seg_target_rounding)
        weight = in_box.expand_as(target)
        denom = weight.sum()
        if denom == 0:
            return logits.sum() * 0
        loss = F.binary_cross_entropy_with_logits(
            logits, target.to(logits.dtype), weight=weight.to(logits.dtype),
            reduction='sum')
        return loss / denom

    def loss(self, batch_inputs: torch.Tensor, batch_data_samples) -> dict:
        """mmdet's losses of the detector, plus ``loss_aux_seg`` when
        ``seg_loss`` is on."""
        feats, score = self.extract_feat_and_score(batch_inputs)
        losses = super().loss(_Features(feats), batch_data_samples)
        if self.seg_loss:
            losses['loss_aux_seg'] = self.seg_loss_weight * self.aux_seg_loss(
                score, batch_data_samples, batch_inputs.shape[-2:])
        return losses
