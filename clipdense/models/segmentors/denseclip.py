"""DenseCLIP for semantic segmentation (Rao et al., CVPR 2022)."""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.model.weight_init import trunc_normal_
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.segmentors.encoder_decoder import EncoderDecoder
from mmseg.utils import add_prefix
from torch import nn

from clipdense.registry import MODELS
from ..open_vocab import check_vocabulary
from ..utils.text_cache import TextEmbeddingCache
from ..utils.pixel_text import pixel_text_score_map, visual_context

PROMPTING = ('post', 'pre')


def _as_cfg(cfg):
    return ConfigDict(copy.deepcopy(dict(cfg))) if cfg is not None else None


def classes_of(dataset) -> Tuple[str, ...]:
    """Class names of a registered dataset type (its ``METAINFO``), or of a
    dataset config (``metainfo.classes`` if it sets them, else its type's).

    Args:
        dataset (str | dict): e.g. ``'ADE20KDataset'`` or
            ``dict(type='SyntheticSegDataset', metainfo=dict(classes=[...]))``.
    """
    from clipdense.registry import DATASETS
    if isinstance(dataset, dict):
        meta = dataset.get('metainfo') or {}
        if meta.get('classes'):
            return tuple(meta['classes'])
        dataset = dataset.get('type')
    if not isinstance(dataset, str):
        raise TypeError('classes_from must be a dataset type name or a dataset '
                        f'config dict, got {type(dataset).__name__}')
    cls = DATASETS.get(dataset)
    if cls is None:
        raise ValueError(f'classes_from={dataset!r} is not a registered dataset type; '
                         'give a dataset type (e.g. ADE20KDataset) or set '
                         'model.vocabulary=[...]')
    classes = getattr(cls, 'METAINFO', {}).get('classes')
    if not classes:
        raise ValueError(f'{dataset} has no METAINFO classes; set model.vocabulary=[...]')
    return tuple(classes)


@MODELS.register_module()
class DenseCLIPSegmentor(EncoderDecoder):
    """DenseCLIP: pixel-text matching with context-aware prompting (Rao et
    al., "DenseCLIP: Language-Guided Dense Prediction with Context-Aware
    Prompting", CVPR 2022), on mmseg 1.x.

    Data flow (``B`` images, ``K`` classes, ``D`` joint-space width):

    1. The CLIP image backbone (:class:`OpenCLIPResNet` /
       :class:`OpenCLIPViT` with ``joint_outputs=('global', 'dense')``)
       gives the pyramid, the global embedding ``(B, D)`` and the dense
       embeddings ``z`` ``(B, D, h, w)``; the visual context is
       ``[global, z]`` as ``(B, 1 + h*w, D)``.
    2. Text embeddings ``t`` ``(B, K, D)`` from the CLIP text tower with
       ``num_contexts`` learnable context tokens (CoOp-style,
       :class:`OpenCLIPContextTextEncoder`), either

       * ``prompting='post'`` (post-model prompting, DenseCLIP's default):
         ``t = T([p, e_k])`` is image-independent; then
         ``t <- t + gamma * ContextDecoder(t, visual context)`` with a
         per-channel ``gamma`` initialised to ``gamma_init`` (1e-4). With
         ``context_decoder=None`` the contexts are used without visual
         context (the paper's "language-domain prompting only").
       * ``prompting='pre'`` (pre-model prompting, paper Sec. 3.3, not in
         the authors' code): ``v_pre = ContextDecoder(q, visual context)``
         with ``q`` the learnable contexts, and ``t = T([v_pre, e_k])``.
         The text tower then depends on the image and runs on ``B * K``
         sequences every forward pass (training *and* inference), which is
         what makes it slower than post-model prompting (for ADE20K: 150
         sequences of 13 tokens through a 12-layer text transformer per
         image).

    3. Score map ``s = <z / |z|, t / |t|>`` ``(B, K, h, w)`` (cosines),
       concatenated to pyramid level ``score_concat_index`` (resized to it
       when the sizes differ), then the mm neck (FPN) and decode head
       (FPNHead): ``K`` extra input channels on that level.
    4. Training: the decode head's loss (``decode.*``), optional auxiliary
       heads (``aux.*``), and the score-map loss: the identity head's
       cross-entropy on ``s / tau`` (``aux_identity.*``; tau 0.07, weight
       0.4 in the configs).

    Text cache: with post-model prompting the image-independent part
    ``T([p, e_k])`` is computed once per (vocabulary, context and text
    tower weights) and reused for every image while no gradient is needed
    (inference, validation); it is recomputed after a vocabulary change or
    when the contexts or the tower change (optimizer step, checkpoint
    load). In training it is recomputed every step (the contexts learn).

    Vocabulary: ``vocabulary`` (a list of class names), else the classes
    of ``classes_from`` (a dataset type name such as ``'ADE20KDataset'``,
    or a dataset config); ``num_classes`` of the heads and the neck's
    input channels follow it: leave them unset, or give values that match
    (a mismatch fails here, with the fix in the message). At inference
    :meth:`set_vocabulary` renames / rephrases the ``K`` classes (text only,
    cached); changing their *number* needs retraining, because the neck and
    the decode head have ``K``-channel weights.

    Args:
        backbone (dict): CLIP image backbone config; ``joint_outputs`` is
            set to ``('global', 'dense')``.
        text_encoder (dict): :class:`OpenCLIPContextTextEncoder` config.
            Its ``num_contexts`` must stay 0: the contexts belong to the
            segmentor (``contexts``), so that the paper's ``lr_mult=0`` on
            ``text_encoder`` freezes the tower but not the prompts.
        decode_head (dict): mm decode head (FPNHead); ``num_classes``
            optional (follows the vocabulary).
        neck (dict, optional): mm neck (FPN); ``in_channels`` optional
            (backbone channels, plus ``K`` at ``score_concat_index``).
        context_decoder (dict, optional): :class:`ContextDecoder` config
            (dims filled in); None: no visual context (post-model only).
        identity_head (dict, optional): head for the score-map loss
            (:class:`PixelTextIdentityHead`); None: no score-map loss.
        auxiliary_head (dict | list, optional): usual mm auxiliary heads on
            the neck outputs.
        vocabulary (Sequence[str], optional): class names (``'sofa, couch'``
            averages synonyms).
        classes_from (str | dict, optional): dataset type (or config) whose
            classes are the vocabulary when ``vocabulary`` is None.
        prompting (str): ``'post'`` or ``'pre'``.
        num_contexts (int): learnable context tokens (DenseCLIP: 8).
        context_init_std (float): their truncated-normal std (0.02;
            DenseCLIP's code calls ``nn.init.trunc_normal_`` with torch's
            default std 1.0, which the paper configs set).
        score_concat_index (int): pyramid level receiving the score map
            (DenseCLIP: 3 for ResNets, 2 for ViT-B/16).
        tau (float): temperature of the score-map loss (0.07).
        gamma_init (float): initial value of every ``gamma`` channel.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as mmseg's
            ``EncoderDecoder``; ``test_cfg`` defaults to whole-image mode.
        pretrained (str, optional): CLIP weights for both the backbone and
            the text encoder (when they set none themselves).

    Raises:
        ValueError: no vocabulary, vocabulary / ``num_classes`` / neck
            channel mismatches, backbone and text encoder of different
            joint spaces, bad ``prompting`` / ``score_concat_index``.
    """

    def __init__(self,
                 backbone: dict,
                 text_encoder: dict,
                 decode_head: dict,
                 neck: Optional[dict] = None,
                 *,
                 context_decoder: Optional[dict] = dict(type='ContextDecoder'),
                 identity_head: Optional[dict] = dict(type='PixelTextIdentityHead'),
                 auxiliary_head: Union[None, dict, List[dict]] = None,
                 vocabulary: Optional[Sequence[str]] = None,
                 classes_from: Union[None, str, dict] = None,
                 prompting: str = 'post',
                 num_contexts: int = 8,
                 context_init_std: float = 0.02,
                 score_concat_index: int = 3,
                 tau: float = 0.07,
                 gamma_init: float = 1e-4,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        # EncoderDecoder.__init__ builds the neck before anything could tell
        # it the backbone's channels; build the parts here instead.
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor,
                               init_cfg=init_cfg)
        if prompting not in PROMPTING:
            raise ValueError(f"prompting must be one of {PROMPTING}, got {prompting!r}")
        if prompting == 'pre' and context_decoder is None:
            raise ValueError("prompting='pre' needs a context_decoder (it turns the "
                             'visual context into the text context tokens)')
        if tau <= 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        if num_contexts < 0:
            raise ValueError(f'num_contexts must be >= 0, got {num_contexts}')
        if prompting == 'pre' and num_contexts < 1:
            raise ValueError("prompting='pre' needs num_contexts >= 1 (the learnable "
                             'queries of the context decoder)')

        # ---- vocabulary ------------------------------------------------
        if vocabulary is None:
            if classes_from is None:
                raise ValueError(
                    'DenseCLIPSegmentor needs class names: set model.classes_from to the '
                    "dataset type (e.g. 'ADE20KDataset') or model.vocabulary=[...] "
                    '(also possible with --cfg-options)')
            vocabulary = classes_of(classes_from)
        names = check_vocabulary(vocabulary).names
        self.vocabulary = tuple(str(v) for v in vocabulary)
        k = len(names)
        self.prompting = prompting
        self.tau = float(tau)
        self._text_cache = TextEmbeddingCache(1)

        # ---- image backbone ---------------------------------------------
        backbone = _as_cfg(backbone)
        text_encoder = _as_cfg(text_encoder)
        if pretrained is not None:
            for part in (backbone, text_encoder):
                if part.get('pretrained') is None:
                    part['pretrained'] = pretrained
        joint = tuple(backbone.get('joint_outputs') or ())
        for need in ('global', 'dense'):
            if need not in joint:
                joint = joint + (need, )
        backbone['joint_outputs'] = joint
        self.backbone = MODELS.build(backbone)
        channels = list(self.backbone.out_channels)
        if not 0 <= score_concat_index < len(channels):
            raise ValueError(f'score_concat_index={score_concat_index} but the backbone '
                             f'returns {len(channels)} levels')
        self.score_concat_index = int(score_concat_index)

        # ---- text side ----------------------------------------------------
        if text_encoder.get('num_contexts', 0):
            raise ValueError(
                'set model.num_contexts, not model.text_encoder.num_contexts: '
                'DenseCLIPSegmentor owns the learnable contexts (so that lr_mult=0 '
                'on text_encoder freezes the tower, not the prompts)')
        text_encoder['num_contexts'] = 0
        self.text_encoder = MODELS.build(text_encoder)
        enc = self.text_encoder
        d = int(self.backbone.embed_dim)
        if int(enc.embed_dim) != d:
            raise ValueError(f'backbone joint space ({d}) and text encoder joint space '
                             f'({enc.embed_dim}) differ: use the same CLIP architecture '
                             'for both')
        enc.check_names([s for n in names for s in n.split(',') if s.strip()])
        self.num_contexts = int(num_contexts)
        if self.num_contexts + enc.class_context_length > enc.context_length:
            raise ValueError(f'num_contexts + class_context_length = '
                             f'{self.num_contexts + enc.class_context_length} exceeds the '
                             f'text context of {enc.context_length}')
        if self.num_contexts:
            self.contexts = nn.Parameter(torch.empty(1, self.num_contexts,
                                                     enc.token_embed_dim))
            trunc_normal_(self.contexts, std=context_init_std)
        else:
            self.contexts = None
        self.context_decoder = None
        self.gamma = None
        if context_decoder is not None:
            cd = _as_cfg(context_decoder)
            if prompting == 'post':
                dims = dict(query_dim=d, visual_dim=d, out_dim=d)
            else:
                c = enc.token_embed_dim
                dims = dict(query_dim=c, visual_dim=d, out_dim=c)
            for key, val in dims.items():
                if cd.get(key) is not None and cd[key] != val:
                    raise ValueError(f'context_decoder.{key}={cd[key]} but {prompting}-model '
                                     f'prompting needs {val}; leave it unset')
                cd[key] = val
            self.context_decoder = MODELS.build(cd)
            if prompting == 'post':
                self.gamma = nn.Parameter(torch.full((d, ), float(gamma_init)))

        # ---- neck and heads ---------------------------------------------
        expected = list(channels)
        expected[self.score_concat_index] += k
        if neck is not None:
            neck = _as_cfg(neck)
            self._fill_in_channels(neck, 'neck', expected, channels, k)
            self.neck = MODELS.build(neck)
        decode_head = _as_cfg(decode_head)
        if neck is None:
            self._fill_in_channels(decode_head, 'decode_head', expected, channels, k)
        self._fill_num_classes(decode_head, 'decode_head', k)
        self._init_decode_head(decode_head)
        if auxiliary_head is not None:
            aux = [auxiliary_head] if isinstance(auxiliary_head, dict) else auxiliary_head
            aux = [_as_cfg(a) for a in aux]
            for i, a in enumerate(aux):
                self._fill_num_classes(a, f'auxiliary_head[{i}]', k)
            auxiliary_head = aux[0] if isinstance(auxiliary_head, dict) else aux
        self._init_auxiliary_head(auxiliary_head)
        self.identity_head = None
        if identity_head is not None:
            identity_head = _as_cfg(identity_head)
            self._fill_num_classes(identity_head, 'identity_head', k)
            identity_head.setdefault('align_corners', self.align_corners)
            self.identity_head = MODELS.build(identity_head)

        self.train_cfg = train_cfg
        self.test_cfg = ConfigDict(test_cfg) if test_cfg else ConfigDict(mode='whole')

    # ------------------------------------------------------------------
    @staticmethod
    def _fill_num_classes(cfg, what, k):
        n = cfg.get('num_classes')
        if n is None:
            cfg['num_classes'] = k
        elif int(n) != k:
            raise ValueError(
                f'{what}.num_classes={n} but the vocabulary has {k} classes; remove '
                f'num_classes from model.{what} (it follows the vocabulary) or give '
                f'{n} class names in model.vocabulary')

    @staticmethod
    def _fill_in_channels(cfg, what, expected, channels, k):
        given = cfg.get('in_channels')
        if given is None:
            cfg['in_channels'] = list(expected)
        elif list(given) != list(expected):
            raise ValueError(
                f'{what}.in_channels={list(given)} but DenseCLIP feeds it {list(expected)} '
                f'(backbone {list(channels)} plus the {k}-class score map); leave '
                f'model.{what}.in_channels unset to follow the vocabulary')

    # ---- vocabulary ------------------------------------------------------
    def set_vocabulary(self, vocabulary: Sequence[str]) -> None:
        """Use new names for the ``K`` classes (text only; the next forward
        re-encodes them once, later ones reuse the cache).

        Raises:
            ValueError: a different number of classes (the neck and decode
                head are trained for ``K``), or a bad vocabulary.
        """
        names = check_vocabulary(vocabulary, self.text_encoder).names
        if len(names) != self.num_classes:
            raise ValueError(
                f'this DenseCLIP model was trained for {self.num_classes} classes (its '
                f'neck and decode head have {self.num_classes}-class weights); the new '
                f'vocabulary has {len(names)}. DenseCLIP can rename or rephrase its '
                'classes at inference but not change their number: retrain with '
                'model.vocabulary=[...] (or use a training-free open-vocabulary model '
                'such as MaskCLIP)')
        self.text_encoder.check_names([s for n in names for s in n.split(',') if s.strip()])
        self.vocabulary = tuple(str(v) for v in vocabulary)
        self._text_cache.clear()

    # ---- text side -------------------------------------------------------
    def _encode_text(self, context: Optional[torch.Tensor]) -> torch.Tensor:
        if context is None:
            # no learnable contexts: plain [SOT] name [EOT] prompts
            context = self.text_encoder.part('token_embedding').weight.new_zeros(
                1, 0, self.text_encoder.token_embed_dim)
        return self.text_encoder(self.vocabulary, context=context)

    def text_embeddings(self) -> torch.Tensor:
        """The image-independent text embeddings ``T([p, e_k])``, ``(1, K, D)``.

        Cached while no gradient is needed (see the class docstring); the
        cache key holds the vocabulary, the contexts' storage and version,
        and the text tower's weights.
        """
        enc = self.text_encoder
        ctx = self.contexts
        params = enc.tower_parameters() + ([ctx] if ctx is not None else [])
        trainable = torch.is_grad_enabled() and any(p.requires_grad for p in params)
        if trainable:
            self._text_cache.clear()
        key = (self.vocabulary, enc.weights_key(),
               None if ctx is None else (ctx.data_ptr(), ctx._version, ctx.device, ctx.dtype))
        return self._text_cache.get(key, lambda: self._encode_text(ctx), trainable=trainable)

    def _class_embeddings(self, glob: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """Text embeddings ``(B, K, D)`` after context-aware prompting."""
        b = dense.shape[0]
        if self.context_decoder is None:
            return self.text_embeddings().expand(b, -1, -1)
        visual = visual_context(glob, dense)
        if self.prompting == 'pre':
            # paper Sec. 3.3: v_pre = TransDecoder(q, [z_global, z]); text input
            # [v_pre, e_k]: the text tower runs per image on B*K sequences
            v_pre = self.context_decoder(self.contexts.expand(b, -1, -1), visual)
            return self.text_encoder(self.vocabulary, context=v_pre)
        t = self.text_embeddings().expand(b, -1, -1)
        # paper Eq. (5): t <- t + gamma * v_post
        diff = self.context_decoder(t, visual)
        return t + self.gamma.to(diff.dtype) * diff

    # ---- features ----------------------------------------------------------
    def extract_feat_and_score(self, inputs: torch.Tensor):
        """Backbone, prompting, score map, neck.

        Returns:
            tuple: the neck's (or the pyramid's) feature list, and the
            score map ``(B, K, h, w)`` of cosines at the dense embeddings'
            size (``H/32`` for ResNets, ``H/16`` for ViT-B/16).
        """
        out = self.backbone(inputs)
        feats, joint = list(out[:-1]), out[-1]
        glob, dense = joint['global'], joint['dense']
        text = self._class_embeddings(glob, dense)
        score = pixel_text_score_map(dense, text)
        i = self.score_concat_index
        s = score
        if s.shape[-2:] != feats[i].shape[-2:]:
            s = F.interpolate(s, size=feats[i].shape[-2:], mode='bilinear',
                              align_corners=False)
        feats[i] = torch.cat([feats[i], s.to(feats[i].dtype)], dim=1)
        if self.with_neck:
            feats = self.neck(feats)
        return feats, score

    def extract_feat(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """Features for the decode head (the score map concatenated, then
        the neck)."""
        return self.extract_feat_and_score(inputs)[0]

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """Decode-head loss, auxiliary losses and the score-map loss."""
        x, score = self.extract_feat_and_score(inputs)
        losses = dict()
        losses.update(self._decode_head_forward_train(x, data_samples))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        if self.identity_head is not None:
            loss_id = self.identity_head.loss(score / self.tau, data_samples,
                                              self.train_cfg)
            losses.update(add_prefix(loss_id, 'aux_identity'))
        return losses
