"""MaskCLIP's training-free dense classification head (Zhou et al., ECCV 2022)."""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from clipdense.registry import MODELS
from ..open_vocab import check_vocabulary_context  # noqa: F401 (its old home)
from .training_free_head import TrainingFreeHead


@MODELS.register_module()
class MaskCLIPHead(TrainingFreeHead):
    """Classify CLIP's dense joint-space features by their cosine with the
    text embeddings of a vocabulary (MaskCLIP, Zhou et al., ECCV 2022,
    Sec. 3.1-3.2).

    The backbone must return its joint-space outputs (``joint_outputs``
    containing ``'value'``, and ``'keys'`` for key smoothing): the input of
    this head is the backbone's output tuple, whose last element is that
    dict. ``'value'`` is already in the joint space (ResNet:
    ``c_proj(v_proj(x))``; ViT: last-block value path, ``ln_post``,
    ``proj``), so the head has no visual weights of its own.

    Scores: the pixel features and the class embeddings are L2-normalised,
    their cosine is multiplied by ``logit_scale`` (100, as MaskCLIP) and
    turned into class probabilities by a softmax over classes. The head
    returns the **log** of those probabilities (after the optional
    refinements below), so ``argmax`` gives the prediction; without any
    refinement this equals ``logit_scale * cos`` up to a per-pixel
    constant.

    Optional refinements, all off by default (MaskCLIP's annotation-free
    numbers use none of them):

    * ``pd_thresh`` (prompt denoising): a class whose highest probability
      over the whole image is below ``pd_thresh`` is removed from that image
      (its score is set to a very low value before the softmax). Removes
      classes that are "everywhere a little and nowhere confidently".
    * ``ks_thresh`` (key smoothing): a pixel whose highest probability is
      below ``ks_thresh`` gets the class distribution ``S @ P``, with ``S``
      the cosine similarities between the last block's keys (ViT) or the
      attention pool's keys ``k_proj(x)`` (ResNet; L2-normalised over
      channels; no softmax, as in MaskCLIP) and ``P`` the probabilities of
      all pixels. Needs ``'keys'`` in the backbone's ``joint_outputs``. The smoothed scores are
      shifted and rescaled per pixel to a distribution (same argmax).
      ``ks_thresh=1.0`` smooths
      every pixel (MaskCLIP's commented-out setting). (MaskCLIP's code
      normalised the keys over the token axis, ``F.normalize(k, p=2)`` on
      an ``(N, HW, C)`` tensor; with ``refine_mode='clipdense'`` they are
      normalised per token, which makes ``S`` a cosine similarity as the
      paper describes; ``refine_mode='authors'`` does what the code did.)
    * ``bg_thresh`` with ``bg_index`` (background by threshold): a pixel
      whose highest probability is below ``bg_thresh`` is assigned the
      class ``bg_index`` of the vocabulary. A background *class* needs no
      option: put e.g. ``'background'`` in the vocabulary.

    The order is prompt denoising, key smoothing, background threshold.

    ``refine_mode`` chooses how the refinements and the output are computed:

    * ``'clipdense'`` (default): as described above - prompt denoising keeps
      each image's best class, key smoothing uses the cosine of the keys
      (normalised per token) and a smoothed row is rescaled to a
      distribution; the output is log-probabilities.
    * ``'authors'`` (MaskCLIP's paper configs): as chongzhou96/MaskCLIP's
      ``MaskClipHead`` at commit 245d31f, whose output is the cosine
      (no temperature, no softmax) when no refinement runs; prompt
      denoising sets a weak class's cosine to -100 (no class is kept);
      key smoothing normalises the keys over the *token* axis
      (``F.normalize`` on an ``(N, HW, C)`` tensor, dim 1), computes
      ``S @ P`` from the probabilities of all pixels, replaces only the
      pixels whose highest probability is below ``ks_thresh`` with those
      raw (unnormalised) values and returns probabilities. This head
      returns that output times ``logit_scale``: a positive constant
      changes neither the argmax nor the bilinear resize of mmseg's
      ``predict``, so the labels are MaskCLIP's, and without refinement a
      softmax of the output gives MaskCLIP's probabilities (what
      ``demo/image_demo.py``'s heat maps show). ``bg_thresh`` (a clipdense
      addition) is refused in this mode.

    The vocabulary is a call-time property: :meth:`set_vocabulary` changes
    it without touching the image backbone; the text tower runs only for a
    vocabulary not seen before (:class:`OpenCLIPTextEncoder` caches). The
    vocabulary, the text encoder, the cosine classifier and the training-free
    ``loss`` come from :class:`TrainingFreeHead`.

    Args:
        text_encoder (dict | nn.Module): config (or instance) of an
            :class:`OpenCLIPTextEncoder`; usually ``templates='maskclip'``
            (MaskCLIP's 85 templates).
        vocabulary (Sequence[str], optional): class names; default: the text
            encoder's ``vocabulary``.
        num_classes (int, optional): must equal the vocabulary length
            (checked at build time); default: that length.
        in_channels (int, optional): joint-space dimension ``D``; default:
            the text encoder's ``embed_dim`` (checked if given).
        logit_scale (float): temperature of the softmax (MaskCLIP: 100).
        ks_thresh (float): key-smoothing threshold in ``[0, 1]``; 0 = off.
        pd_thresh (float): prompt-denoising threshold in ``[0, 1]``; 0 = off.
        bg_thresh (float): background threshold in ``[0, 1]``; 0 = off.
        bg_index (int, optional): vocabulary index of the background class;
            required by ``bg_thresh > 0``.
        value_key (str): key of the dense features in the backbone's dict.
        refine_mode (str): ``'clipdense'`` or ``'authors'`` (see above).
        **kwargs: passed to mmseg's ``BaseDecodeHead`` (``align_corners``,
            ``threshold``...).

    Raises:
        ValueError: ``num_classes`` does not match the vocabulary, no
            vocabulary, bad thresholds.
    """

    REFINE_MODES = ('clipdense', 'authors')

    def __init__(self,
                 text_encoder: Union[dict, nn.Module],
                 vocabulary: Optional[Sequence[str]] = None,
                 num_classes: Optional[int] = None,
                 in_channels: Optional[int] = None,
                 channels: Optional[int] = None,
                 logit_scale: float = 100.0,
                 ks_thresh: float = 0.0,
                 pd_thresh: float = 0.0,
                 bg_thresh: float = 0.0,
                 bg_index: Optional[int] = None,
                 value_key: str = 'value',
                 refine_mode: str = 'clipdense',
                 init_cfg=None,
                 **kwargs):
        for name, v in (('ks_thresh', ks_thresh), ('pd_thresh', pd_thresh),
                        ('bg_thresh', bg_thresh)):
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f'{name} must be in [0, 1] (0 = off), got {v}')
        if refine_mode not in self.REFINE_MODES:
            raise ValueError(f'refine_mode must be one of {self.REFINE_MODES}, '
                             f'got {refine_mode!r}')
        if refine_mode == 'authors' and bg_thresh > 0:
            raise ValueError("bg_thresh is a clipdense addition that MaskCLIP's code "
                             "lacks; use refine_mode='clipdense' with it (or bg_thresh=0)")
        if bg_thresh > 0 and bg_index is None:
            raise ValueError('bg_thresh > 0 needs bg_index (the vocabulary index '
                             'of the background class)')
        super().__init__(text_encoder, vocabulary, num_classes=num_classes,
                         in_channels=in_channels, channels=channels,
                         init_cfg=init_cfg, **kwargs)
        self.logit_scale = float(logit_scale)
        self.ks_thresh = float(ks_thresh)
        self.pd_thresh = float(pd_thresh)
        self.bg_thresh = float(bg_thresh)
        self.bg_index = bg_index
        self.value_key = value_key
        self.refine_mode = refine_mode
        self._check_bg_index()

    # ------------------------------------------------------------------
    def _check_bg_index(self):
        if self.bg_index is not None and not 0 <= self.bg_index < len(self.vocabulary):
            raise ValueError(f'bg_index={self.bg_index} is outside the vocabulary '
                             f'of {len(self.vocabulary)} classes')

    def check_new_vocabulary(self, parsed) -> None:
        """``bg_index`` must stay inside a new vocabulary."""
        if self.bg_index is not None and not 0 <= self.bg_index < len(parsed.names):
            raise ValueError(f'bg_index={self.bg_index} is outside the new vocabulary '
                             f'of {len(parsed.names)} classes')

    # ------------------------------------------------------------------
    def _joint(self, inputs) -> dict:
        joint = inputs[-1] if isinstance(inputs, (list, tuple)) else inputs
        if not isinstance(joint, dict) or self.value_key not in joint:
            raise KeyError(
                f"MaskCLIPHead reads '{self.value_key}' from the dict the backbone "
                "returns last; build the backbone with joint_outputs containing "
                f"'{self.value_key}' (and 'keys' for key smoothing)")
        return joint

    def forward(self, inputs) -> torch.Tensor:
        """Class scores ``(B, K, h, w)`` at the feature size: log class
        probabilities (``refine_mode='clipdense'``) or MaskCLIP's own
        scores (``'authors'``)."""
        joint = self._joint(inputs)
        cos = self.cosine(joint[self.value_key])
        keys = None
        if self.ks_thresh > 0:
            keys = joint.get('keys')
            if keys is None:
                raise KeyError("key smoothing (ks_thresh > 0) needs 'keys' in the "
                               "backbone's joint_outputs (OpenCLIPViT and "
                               "OpenCLIPResNet provide it)")
        if self.refine_mode == 'authors':
            return self.refine_authors(cos, keys)
        return self.refine(cos * self.logit_scale, keys)

    def refine_authors(self, cos: torch.Tensor,
                       keys: Optional[torch.Tensor] = None) -> torch.Tensor:
        """MaskCLIP's ``refine_output`` (chongzhou96/MaskCLIP @245d31f) on
        the cosines ``(B, K, h, w)``, times ``logit_scale``: see
        ``refine_mode='authors'``."""
        B, K, H, W = cos.shape
        out = cos
        if self.pd_thresh > 0:
            conf = (out * self.logit_scale).softmax(dim=1).flatten(2).amax(dim=-1)
            weak = (conf < self.pd_thresh)[:, :, None, None]
            out = out.masked_fill(weak, -100.0)
        if self.ks_thresh > 0 and keys is not None:
            if keys.shape[-2:] != (H, W):
                raise ValueError(f'keys {tuple(keys.shape)} and dense features '
                                 f'{tuple(cos.shape)} differ in size')
            p = (out * self.logit_scale).softmax(dim=1).flatten(2).transpose(1, 2)
            # normalised over the tokens (dim 1 of (B, HW, C)), as the
            # authors' F.normalize(k, p=2) call does
            k = F.normalize(keys.flatten(2).transpose(1, 2), dim=1)
            smoothed = (k @ k.transpose(1, 2)) @ p
            sel = p.amax(dim=-1, keepdim=True) < self.ks_thresh
            p = torch.where(sel, smoothed, p)
            out = p.transpose(1, 2).reshape(B, K, H, W)
        return out * self.logit_scale

    def refine(self, logits: torch.Tensor,
               keys: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Prompt denoising, key smoothing, background threshold on
        ``logits`` ``(B, K, h, w)``; returns log-probabilities."""
        B, K, H, W = logits.shape
        if self.pd_thresh > 0:
            prob = logits.softmax(dim=1)
            weak = prob.flatten(2).amax(dim=-1) < self.pd_thresh  # (B, K)
            # keep at least the best class of each image
            best = prob.flatten(2).amax(dim=-1).argmax(dim=1)
            weak[torch.arange(B, device=weak.device), best] = False
            logits = logits.masked_fill(weak[:, :, None, None], -1e4)
        prob = logits.softmax(dim=1)
        if self.ks_thresh > 0 and keys is not None:
            if keys.shape[-2:] != (H, W):
                raise ValueError(f'keys {tuple(keys.shape)} and dense features '
                                 f'{tuple(logits.shape)} differ in size')
            k = F.normalize(keys.flatten(2).transpose(1, 2), dim=-1)  # (B, HW, C)
            p = prob.flatten(2).transpose(1, 2)  # (B, HW, K)
            smoothed = (k @ k.transpose(1, 2)) @ p
            sel = p.amax(dim=-1, keepdim=True) < self.ks_thresh
            # S has negative entries: shift each smoothed row to >= 0 and
            # rescale it to sum 1 (keeps MaskCLIP's argmax exactly)
            smoothed = smoothed - smoothed.amin(dim=-1, keepdim=True)
            smoothed = smoothed / smoothed.sum(dim=-1, keepdim=True).clamp_min(1e-12)
            p = torch.where(sel, smoothed, p)
            prob = p.transpose(1, 2).reshape(B, K, H, W)
        if self.bg_thresh > 0:
            low = prob.amax(dim=1, keepdim=True) < self.bg_thresh
            onehot = torch.zeros_like(prob)
            onehot[:, self.bg_index] = 1.0
            prob = torch.where(low, onehot, prob)
        return prob.clamp_min(1e-12).log()
