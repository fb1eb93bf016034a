"""The base of training-free open-vocabulary heads (MaskCLIP, ReCo, and
through MaskCLIP's head ClearCLIP and SCLIP)."""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from ..open_vocab import OpenVocabMixin


class TrainingFreeError(RuntimeError):
    """A training-free head was asked for a loss."""


class TrainingFreeHead(OpenVocabMixin, BaseDecodeHead):
    """A decode head that classifies frozen CLIP features by their cosine
    with the text embeddings of any vocabulary, and has nothing to train.

    The inference protocol (what :func:`clipdense.apis.inference_model`,
    ``demo/image_demo.py``, ``tools/test.py`` and
    :class:`~clipdense.engine.DatasetVocabularyHook` rely on) is this
    class's interface:

    * ``vocabulary``: the current class names (tuple of str; one entry may
      hold comma-separated synonyms, ``'sofa, couch'``);
    * :meth:`set_vocabulary` (from :class:`OpenVocabMixin`): new names,
      checked once, text encoded at once (cached per vocabulary), image
      side untouched, ``num_classes`` / ``out_channels`` follow;
    * ``text_encoder``: the text tower (``tokenizer``, ``context_length``,
      ``embed_dim``), built from a config or given as a module;
    * :meth:`class_embeddings`: ``(K, D)`` L2-normalised text embeddings of
      the vocabulary, from the encoder's cache;
    * :meth:`cosine`: the cosine classifier, ``(B, D, h, w)`` features ->
      ``(B, K, h, w)`` cosines with the class embeddings;
    * ``forward(inputs)``: class scores ``(B, K, h, w)`` whose argmax is the
      prediction, one channel per vocabulary entry (mmseg's ``predict``
      resizes them); subclasses define it;
    * :meth:`loss` raises :class:`TrainingFreeError` naming the fix.

    The head has no visual weights: ``conv_seg`` and dropout of mmseg's
    ``BaseDecodeHead`` are removed, and :meth:`init_weights` leaves the
    (loaded) text tower alone.

    Args:
        text_encoder (dict | nn.Module): config (or instance) of an
            :class:`OpenCLIPTextEncoder`.
        vocabulary (Sequence[str], optional): class names; default: the
            text encoder's ``vocabulary``.
        num_classes (int, optional): must equal the vocabulary length;
            default: that length.
        in_channels (int, optional): joint-space dimension ``D``; default:
            the text encoder's ``embed_dim`` (checked if given).
        channels (int, optional): mmseg's ``channels``; default ``D``.
        **kwargs: passed to mmseg's ``BaseDecodeHead``.
    """

    def __init__(self, text_encoder: Union[dict, nn.Module],
                 vocabulary: Optional[Sequence[str]] = None,
                 num_classes: Optional[int] = None,
                 in_channels: Optional[int] = None,
                 channels: Optional[int] = None,
                 init_cfg=None,
                 **kwargs):
        encoder, parsed = self.resolve_vocabulary(text_encoder, vocabulary, num_classes)
        dim = int(encoder.embed_dim)
        if in_channels is not None and int(in_channels) != dim:
            raise ValueError(f'in_channels={in_channels} but the text encoder\'s '
                             f'joint space has {dim} dimensions')
        super().__init__(in_channels=dim, channels=dim if channels is None else channels,
                         num_classes=len(parsed.names), init_cfg=init_cfg, **kwargs)
        # the classifier is the text embeddings; no 1x1 conv, no dropout
        del self.conv_seg
        self.dropout = None
        self.adopt_vocabulary(encoder, parsed)

    def init_weights(self):
        # nothing to initialise: the text tower is loaded by its own builder
        self._is_init = True

    def cosine(self, feat: torch.Tensor) -> torch.Tensor:
        """Cosine of each pixel's feature with each class embedding:
        ``(B, D, h, w)`` -> ``(B, K, h, w)``.

        Raises:
            ValueError: the features and the text are of different CLIPs.
        """
        feat = F.normalize(feat, dim=1)
        text = self.class_embeddings().to(feat)
        if text.shape[1] != feat.shape[1]:
            raise ValueError(f'text embeddings have {text.shape[1]} dims but the '
                             f'dense features {feat.shape[1]}: text encoder and '
                             'backbone are not the same CLIP')
        return torch.einsum('bdhw,kd->bkhw', feat, text)

    def loss(self, inputs, batch_data_samples, train_cfg) -> dict:
        name = type(self).__name__
        raise TrainingFreeError(
            f'{name} is training-free: it classifies frozen CLIP features with '
            'text embeddings and has no weights to train and no loss. Use it for '
            'inference/testing only (tools/test.py, clipdense.apis.inference_model, '
            'demo/image_demo.py, with checkpoint `none`); to train, use a head with a '
            'loss (e.g. DenseCLIP or OVSeg configs)')

    def loss_by_feat(self, seg_logits, batch_data_samples) -> dict:
        return self.loss(None, batch_data_samples, None)

    def cls_seg(self, feat):
        raise RuntimeError(f'{type(self).__name__} classifies with text embeddings; '
                           'call forward()')
