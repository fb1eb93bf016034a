"""OVSeg's open-vocabulary MaskFormer head with the CLIP ensemble.

Liang et al., "Open-Vocabulary Semantic Segmentation with Mask-adapted
CLIP" (CVPR 2023), Sec. 3.1: a MaskFormer proposes class-agnostic masks
whose query embeddings are classified by their cosine with CLIP text
embeddings (plus a learnt "no object" embedding); a CLIP image tower then
classifies every masked crop, and the two are combined geometrically.
"""
import copy
from contextlib import contextmanager
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.models.decode_heads.maskformer_head import MaskFormerHead
from mmseg.structures.seg_data_sample import SegDataSample

from clipdense.registry import MODELS
from ..open_vocab import OpenVocabMixin, check_vocabulary


def ovseg_ensemble(mf_logits: torch.Tensor, clip_logits: Optional[torch.Tensor],
                   weight: float, clip_valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """OVSeg's geometric ensemble of the two classifiers.

    ``p = p_mf ** (1 - weight) * p_clip ** weight`` where

    * ``p_mf = softmax(mf_logits)`` over ``K + 1`` columns, then the
      no-object column (the last) is dropped;
    * ``p_clip = softmax(clip_logits[..., :K])``: the no-object column is
      dropped **before** the softmax (OVSeg's asymmetry);
    * proposals whose binary mask was empty (``clip_valid`` False) get
      ``p_clip = 1`` (only ``p_mf`` counts).

    Args:
        mf_logits (Tensor): ``(..., Q, K+1)`` MaskFormer logits.
        clip_logits (Tensor, optional): ``(..., Q, K+1)`` (or ``(..., Q, K)``)
            CLIP logits; None means "no CLIP branch" (``p_clip = 1``).
        weight (float): ``lambda`` in ``[0, 1]``; 0 = MaskFormer only, 1 =
            CLIP only.
        clip_valid (Tensor, optional): ``(..., Q)`` bool.

    Returns:
        Tensor: ``(..., Q, K)`` class scores.
    """
    if not 0.0 <= float(weight) <= 1.0:
        raise ValueError(f'the ensemble weight (lambda) must be in [0, 1], got {weight}')
    k = mf_logits.shape[-1] - 1
    p_mf = mf_logits.softmax(dim=-1)[..., :k]
    if clip_logits is None:
        return p_mf if weight < 1 else torch.ones_like(p_mf)
    if clip_logits.shape[-1] not in (k, k + 1):
        raise ValueError(f'clip_logits have {clip_logits.shape[-1]} columns; expected '
                         f'{k + 1} (with no-object) or {k}')
    p_clip = clip_logits[..., :k].softmax(dim=-1)
    if clip_valid is not None:
        p_clip = torch.where(clip_valid[..., None], p_clip, torch.ones_like(p_clip))
    return p_mf.pow(1.0 - weight) * p_clip.pow(weight)


class TextEmbeddingClassifier(nn.Module):
    """Query features -> ``logit_scale * cos(MLP(q), [t_1..t_K, t_null])``.

    ``t_k`` are (frozen) CLIP text embeddings, set with
    :meth:`set_text_embeds`; ``t_null`` is a learnt no-object embedding,
    initialised ``N(0, D^-0.5)`` and L2-normalised before use (OVSeg's
    ``MaskFormerClipAdapter``).
    """

    def __init__(self, in_channels: int, embed_dim: int, hidden: Optional[int] = None,
                 logit_scale: float = 100.0):
        super().__init__()
        hidden = int(hidden or in_channels)
        self.proj = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, embed_dim))
        self.null_embed = nn.Parameter(torch.randn(embed_dim) * embed_dim ** -0.5)
        self.logit_scale = float(logit_scale)
        self.text_embeds: Optional[torch.Tensor] = None

    def set_text_embeds(self, text: torch.Tensor):
        self.text_embeds = text

    def bank(self) -> torch.Tensor:
        """``(K+1, D)``: the text embeddings and the normalised no-object one."""
        if self.text_embeds is None:
            raise RuntimeError('no text embeddings set; call set_text_embeds first')
        null = F.normalize(self.null_embed, dim=-1).to(self.text_embeds.dtype)
        return torch.cat([self.text_embeds, null[None]], dim=0)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        q = F.normalize(self.proj(q), dim=-1)
        bank = self.bank().to(q.dtype)
        return self.logit_scale * q @ bank.t()


@MODELS.register_module()
class OVSegHead(OpenVocabMixin, MaskFormerHead):
    """MaskFormer head with an open-vocabulary class head and OVSeg's CLIP
    ensemble (Liang et al., CVPR 2023).

    Everything of mmseg's :class:`MaskFormerHead` (mmdet's pixel decoder,
    DETR decoder, Hungarian matching, CE + focal + dice losses with deep
    supervision) is kept; only the linear class layer is replaced by a
    :class:`TextEmbeddingClassifier`: a 2-layer MLP to the CLIP joint space,
    then ``logit_scale * cos`` with the text embeddings of the vocabulary
    and a learnt no-object embedding.

    Training uses ``train_vocabulary`` (the seen classes; the dataset's
    label ids index it); inference uses ``vocabulary``, which
    :meth:`set_vocabulary` changes at call time (text only, cached).

    Inference (:meth:`predict`): masks are upsampled to the input size; with
    a ``clip_classifier`` (a :class:`MaskedCropCLIP`) and ``ensemble_weight
    > 0`` each mask is binarised at ``mask_thr`` and classified by CLIP on
    its masked crop, and the class scores are :func:`ovseg_ensemble`-d. The
    semantic map is ``S[c] = sum_q p[q, c] * sigmoid(mask_q)``. The CLIP
    branch needs the image: use the :class:`OVSeg` segmentor, which passes
    it.

    Args:
        text_encoder (dict | nn.Module): an :class:`OpenCLIPTextEncoder`
            (OVSeg: ViLD's 14 templates).
        vocabulary (Sequence[str], optional): inference classes; default the
            text encoder's, else ``train_vocabulary``
            (:class:`DatasetVocabularyHook` sets the evaluated dataset's).
        train_vocabulary (Sequence[str], optional): training classes;
            default ``vocabulary``.
        clip_classifier (dict | nn.Module, optional): :class:`MaskedCropCLIP`
            config; None = MaskFormer only.
        ensemble_weight (float): ``lambda`` (OVSeg: 0.7 ADE, 0.6 PC/VOC).
        mask_thr (float): binarisation threshold of ``sigmoid(mask)`` for
            the crops (OVSeg: 0.4 Swin-B/ViT-L, 0.5 R101c/ViT-B).
        logit_scale (float): scale of the MaskFormer cosines (100).
        clip_logit_scale (float): scale of the CLIP cosines (100).
        class_embed_hidden (int, optional): hidden width of the class MLP
            (OVSeg: 1024; default ``feat_channels``).
        no_object_weight (float): CE weight of the no-object class (0.1),
            used when ``loss_cls`` has no ``class_weight``.
        **kwargs: mmseg ``MaskFormerHead`` arguments (``in_channels``,
            ``feat_channels``, ``out_channels``, ``num_queries``,
            ``pixel_decoder``, ``transformer_decoder``, losses, ``train_cfg``).
    """

    def __init__(self,
                 text_encoder: Union[dict, nn.Module],
                 vocabulary: Optional[Sequence[str]] = None,
                 train_vocabulary: Optional[Sequence[str]] = None,
                 clip_classifier: Union[None, dict, nn.Module] = None,
                 ensemble_weight: float = 0.0,
                 mask_thr: float = 0.5,
                 logit_scale: float = 100.0,
                 clip_logit_scale: float = 100.0,
                 class_embed_hidden: Optional[int] = None,
                 no_object_weight: float = 0.1,
                 num_classes: Optional[int] = None,
                 loss_cls: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 **kwargs):
        encoder, parsed = self.resolve_vocabulary(text_encoder, vocabulary, num_classes,
                                                  fallback=train_vocabulary)
        vocab = parsed.vocabulary
        if train_vocabulary is not None:
            parsed_train = check_vocabulary(train_vocabulary, encoder)
        else:
            parsed_train = parsed
        train_vocab = parsed_train.vocabulary
        if not 0.0 <= float(ensemble_weight) <= 1.0:
            raise ValueError(f'ensemble_weight must be in [0, 1], got {ensemble_weight}')
        if not 0.0 < float(mask_thr) < 1.0:
            raise ValueError(f'mask_thr must be in (0, 1), got {mask_thr}')
        k_train = len(train_vocab)
        loss_cls = ConfigDict(copy.deepcopy(loss_cls) if loss_cls is not None else dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            reduction='mean'))
        if loss_cls.get('class_weight') is None:
            loss_cls.class_weight = [1.0] * k_train + [float(no_object_weight)]
        elif len(loss_cls.class_weight) != k_train + 1:
            raise ValueError(
                f'loss_cls.class_weight has {len(loss_cls.class_weight)} entries; it '
                f'needs len(train_vocabulary) + 1 = {k_train + 1} (the last is '
                'no-object), or leave it out to use no_object_weight')
        if train_cfg is not None:
            train_cfg = ConfigDict(copy.deepcopy(train_cfg))
        super().__init__(num_classes=len(vocab), loss_cls=loss_cls,
                         train_cfg=train_cfg, **kwargs)
        self.adopt_vocabulary(encoder, parsed)
        self._parsed_train = parsed_train
        self.embed_dim = int(encoder.embed_dim)
        self.cls_embed = TextEmbeddingClassifier(
            kwargs['feat_channels'], self.embed_dim, class_embed_hidden, logit_scale)
        if isinstance(clip_classifier, dict):
            clip_classifier = MODELS.build(clip_classifier)
        if clip_classifier is not None and int(clip_classifier.embed_dim) != self.embed_dim:
            raise ValueError(f'the CLIP classifier embeds to {clip_classifier.embed_dim} '
                             f'dimensions but the text encoder to {self.embed_dim}; '
                             'use the same CLIP architecture for both')
        if clip_classifier is None and ensemble_weight > 0:
            raise ValueError(f'ensemble_weight={ensemble_weight} needs a clip_classifier '
                             '(a MaskedCropCLIP config); without one set ensemble_weight=0')
        self.clip_classifier = clip_classifier
        self.train_vocabulary = train_vocab
        self.ensemble_weight = float(ensemble_weight)
        self.mask_thr = float(mask_thr)
        self.clip_logit_scale = float(clip_logit_scale)

    # ------------------------------------------------------------------
    def text_embeddings(self, training: Optional[bool] = None) -> torch.Tensor:
        """``(K, D)`` text embeddings of the train or inference vocabulary
        (:meth:`set_vocabulary` changes the inference one)."""
        training = self.training if training is None else training
        with torch.no_grad():
            return self.encode_vocabulary(self._parsed_train if training else None).float()

    def forward(self, x, batch_data_samples):
        """mmdet MaskFormer forward with the text classifier of the current
        mode's vocabulary: ``(L, B, Q, K+1)`` logits, ``(L, B, Q, h, w)``
        mask logits."""
        self.cls_embed.set_text_embeds(self.text_embeddings().to(x[-1].device))
        return super().forward(x, batch_data_samples)

    @contextmanager
    def _train_classes(self):
        saved = self.num_classes
        self.num_classes = len(self.train_vocabulary)
        try:
            yield
        finally:
            self.num_classes = saved

    def loss(self, x, batch_data_samples, train_cfg):
        """Hungarian-matched CE + focal + dice over the seen classes (the
        ground truth ids index ``train_vocabulary``)."""
        bad = [int(v) for ds in batch_data_samples
               for v in torch.unique(ds.gt_sem_seg.data).tolist()
               if v != self.ignore_index and not 0 <= v < len(self.train_vocabulary)]
        if bad:
            raise ValueError(
                f'ground-truth ids {sorted(set(bad))} are outside the train vocabulary '
                f'({len(self.train_vocabulary)} classes); give the dataset a metainfo '
                'with the seen classes so that labels index train_vocabulary')
        with self._train_classes():
            return super().loss(x, batch_data_samples, train_cfg)

    # ------------------------------------------------------------------
    def _samples(self, batch_img_metas, input_shape):
        out = []
        for meta in batch_img_metas:
            meta = dict(meta)
            meta['batch_input_shape'] = tuple(input_shape)
            meta.setdefault('img_shape', tuple(input_shape))
            out.append(SegDataSample(metainfo=meta))
        return out

    def predict_proposals(self, x, batch_img_metas: List[dict],
                          input_shape: Optional[Tuple[int, int]] = None):
        """Class logits ``(B, Q, K+1)`` of the last decoder layer and mask
        logits ``(B, Q, H, W)`` upsampled to the input size."""
        if input_shape is None:
            input_shape = batch_img_metas[0].get('batch_input_shape',
                                                 batch_img_metas[0]['img_shape'])
        cls, masks = self(x, self._samples(batch_img_metas, input_shape))
        masks = F.interpolate(masks[-1], size=tuple(input_shape), mode='bilinear',
                              align_corners=False)
        return cls[-1], masks

    def clip_logits(self, image: torch.Tensor, masks: torch.Tensor):
        """CLIP logits ``(Q, K+1)`` over the same text bank (with the
        no-object row) for one image's mask logits ``(Q, H, W)``, and the
        valid flags ``(Q,)``."""
        binary = masks.sigmoid() > self.mask_thr
        return self.clip_classifier.classify(image, binary, self.cls_embed.bank(),
                                             self.clip_logit_scale)

    def predict(self, x, batch_img_metas: List[dict], test_cfg=None,
                image: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Semantic scores ``(B, K, H, W)`` at the input size.

        Args:
            image (Tensor, optional): ``(B, 3, H, W)`` 0-255 RGB input
                images; needed when the CLIP branch is on.
        """
        lam = self.ensemble_weight
        use_clip = self.clip_classifier is not None and lam > 0
        if use_clip and image is None:
            raise ValueError('the CLIP branch of OVSegHead (ensemble_weight > 0) needs '
                             'the image: use the OVSeg segmentor (type="OVSeg"), or set '
                             'ensemble_weight=0 for MaskFormer only')
        shape = image.shape[-2:] if image is not None else None
        cls, masks = self.predict_proposals(x, batch_img_metas, shape)
        if use_clip:
            outs = [self.clip_logits(image[b].float(), masks[b]) for b in range(masks.shape[0])]
            clip = torch.stack([o[0] for o in outs]).to(cls.dtype)
            valid = torch.stack([o[1] for o in outs])
            probs = ovseg_ensemble(cls, clip, lam, valid)
        else:
            if self.clip_classifier is None and lam > 0:
                raise ValueError(f'ensemble_weight={lam} but the head has no '
                                 'clip_classifier; set ensemble_weight=0')
            probs = ovseg_ensemble(cls, None, 0.0)
        return torch.einsum('bqc,bqhw->bchw', probs, masks.sigmoid())
