"""Whole-image prediction that returns labels without full-size logits.

mmseg's ``EncoderDecoder.predict`` resizes the head's logits to the padded
input, crops the padding, resizes them to the original image and stores
them (``seg_logits``) next to their argmax (``pred_sem_seg``). With an open
vocabulary of 1,000 classes at 512x512 that is 1 GiB of fp32 per image, and
the two resizes and the argmax cost more than the network.

With ``test_cfg.labels_only=True`` (whole-image mode) :class:`LabelsOnlyMixin`
stops at the head's logits and computes the same labels with
:func:`clipdense.models.utils.label_argmax.bilinear_argmax`: the argmax of
mmseg's resize chain evaluated only for the classes that can win each pixel.
``seg_logits`` is then not set (mmseg's ``IoUMetric`` and visualizer read
``pred_sem_seg`` only); leave the option off for score maps (``demo
--heatmaps``).
"""
from typing import List, Optional

import torch
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.structures import SegDataSample

from clipdense.models.utils.label_argmax import (bilinear_argmax,
                                                 mmseg_resize_matrices)


class LabelsOnlyMixin:
    """``test_cfg.labels_only``: labels without full-size logits (see the
    module docstring). Needs ``mode='whole'`` and a decode head that uses
    mmseg's ``predict`` / ``predict_by_feat`` (logits at feature size, then
    one bilinear resize)."""

    def _labels_only(self) -> bool:
        if not self.test_cfg.get('labels_only', False):
            return False
        mode = self.test_cfg.get('mode', 'whole')
        if mode != 'whole':
            raise ValueError(
                f"test_cfg.labels_only needs mode='whole', got mode={mode!r}: "
                'sliding windows average full-size logits; drop labels_only '
                'or test whole images')
        head = type(self.decode_head)
        if head.predict is not BaseDecodeHead.predict or \
                head.predict_by_feat is not BaseDecodeHead.predict_by_feat:
            raise NotImplementedError(
                f'test_cfg.labels_only: {head.__name__} overrides predict / '
                'predict_by_feat, so its logits are not one bilinear resize of '
                'forward(); drop labels_only for this head')
        if self.out_channels == 1:
            raise NotImplementedError('test_cfg.labels_only needs a multi-class '
                                      'head (out_channels > 1)')
        return True

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[SegDataSample]] = None):
        if not self._labels_only():
            return super().predict(inputs, data_samples)
        n, _, h_in, w_in = inputs.shape
        if data_samples is None:
            samples = [SegDataSample(metainfo=dict(
                img_shape=(h_in, w_in), pad_shape=(h_in, w_in),
                ori_shape=(h_in, w_in), padding_size=[0, 0, 0, 0]))
                for _ in range(n)]
        else:
            samples = data_samples
        return self.labels_from_features(self.extract_feat(inputs), samples)

    def labels_from_features(self, feats, samples: List[SegDataSample]):
        """The head and the labels of :meth:`predict` from backbone (and
        neck) features: the part whose cost depends on the vocabulary."""
        metas = [s.metainfo for s in samples]
        low = self.decode_head.forward(feats)
        # the size mmseg's BaseDecodeHead.predict_by_feat resizes to
        size = metas[0].get('pad_shape', metas[0]['img_shape'])[:2]
        for i, meta in enumerate(metas):
            padding = meta.get('img_padding_size', meta.get('padding_size', [0] * 4))
            flip = meta.get('flip_direction') if meta.get('flip', False) else None
            ay, ax = mmseg_resize_matrices(
                low.shape[2:], size, padding, meta.get('ori_shape', size)[:2],
                flip=flip, align_corners=self.align_corners,
                device=low.device)
            labels = bilinear_argmax(low[i], ay, ax)
            samples[i].set_data({'pred_sem_seg': PixelData(data=labels[None])})
        return samples
