"""OVSeg segmentor: MaskFormer proposals + CLIP on masked crops."""
from typing import List, Optional

import torch
from mmseg.models.segmentors import EncoderDecoder

from clipdense.registry import MODELS


@MODELS.register_module()
class OVSeg(EncoderDecoder):
    """Two-stage open-vocabulary segmentor of OVSeg (Liang et al., "Open-
    Vocabulary Semantic Segmentation with Mask-adapted CLIP", CVPR 2023).

    An :class:`EncoderDecoder` whose decode head is an :class:`OVSegHead`.
    The only difference is that inference hands the head the input images
    (de-normalised back to 0-255 RGB with the data preprocessor's mean and
    std), which its CLIP branch crops. Training is the head's MaskFormer
    loss (the CLIP branch is not used while training, as in OVSeg).

    The vocabulary is the head's (:meth:`OVSegHead.set_vocabulary`, used by
    :func:`clipdense.apis.inference_model`).
    """

    def _images_0_255(self, inputs: torch.Tensor) -> torch.Tensor:
        dp = self.data_preprocessor
        x = inputs.float()
        if getattr(dp, '_enable_normalize', False):
            x = x * dp.std.to(x) + dp.mean.to(x)
        if not getattr(dp, 'channel_conversion', False):
            x = x.flip(1)  # mmcv loads BGR; CLIP wants RGB
        return x

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        x = self.extract_feat(inputs)
        return self.decode_head.predict(x, batch_img_metas, self.test_cfg,
                                        image=self._images_0_255(inputs))

    def _forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None):
        """``tensor`` mode: the head's raw outputs (all decoder layers):
        class logits ``(L, B, Q, K+1)`` and mask logits ``(L, B, Q, h, w)``."""
        from mmseg.structures import SegDataSample
        x = self.extract_feat(inputs)
        if data_samples is None:
            shape = tuple(inputs.shape[-2:])
            data_samples = [SegDataSample(metainfo=dict(img_shape=shape, batch_input_shape=shape))
                            for _ in range(inputs.shape[0])]
        else:
            for ds in data_samples:
                ds.set_metainfo(dict(batch_input_shape=tuple(inputs.shape[-2:])))
        return self.decode_head(x, data_samples)
