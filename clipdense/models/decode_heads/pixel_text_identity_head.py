"""Identity head: puts mmseg's decode-head loss on a pixel-text score map."""
from typing import Optional

import torch
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from clipdense.registry import MODELS


@MODELS.register_module()
class PixelTextIdentityHead(BaseDecodeHead):
    """A decode head without weights whose logits are its input.

    DenseCLIP (Rao et al., CVPR 2022, Sec. 3.2) supervises the pixel-text
    score map directly: cross-entropy on ``score_map / tau`` against the
    labels, weight 0.4 (DenseCLIP's ``IdentityHead``). This head lets the
    base class do that: :meth:`forward` returns the (already scaled) score
    map, and ``loss_by_feat`` upsamples it to the label size and applies
    ``loss_decode`` (ignore index, sampler, several losses as usual).

    Args:
        num_classes (int): channels of the score map (the vocabulary size).
        in_channels (int, optional): must equal ``num_classes`` (default).
        loss_decode (dict | list): as any mmseg head; DenseCLIP:
            ``dict(type='CrossEntropyLoss', loss_weight=0.4)``.
        **kwargs: other ``BaseDecodeHead`` arguments (``align_corners``,
            ``ignore_index``...). ``in_index`` picks the input when a
            list is passed.
    """

    def __init__(self, num_classes: int, in_channels: Optional[int] = None,
                 channels: Optional[int] = None, *,
                 loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                  loss_weight=0.4),
                 init_cfg=None, **kwargs):
        in_channels = num_classes if in_channels is None else in_channels
        channels = num_classes if channels is None else channels
        if in_channels != num_classes or channels != num_classes:
            raise ValueError(
                f'PixelTextIdentityHead passes its input through, so in_channels '
                f'({in_channels}) and channels ({channels}) must equal num_classes '
                f'({num_classes}); leave them unset')
        if kwargs.get('input_transform') is not None:
            raise ValueError('PixelTextIdentityHead takes one map (input_transform=None)')
        kwargs.setdefault('dropout_ratio', 0.0)
        super().__init__(in_channels, channels, num_classes=num_classes,
                         loss_decode=loss_decode, init_cfg=init_cfg, **kwargs)
        self.conv_seg = None  # no classifier: the score map is the logits

    def forward(self, inputs) -> torch.Tensor:
        """``inputs``: the scaled score map ``(B, K, h, w)`` (or a list of
        maps, of which ``in_index`` is used). Returns it unchanged."""
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[self.in_index]
        if inputs.dim() != 4 or inputs.shape[1] != self.out_channels:
            raise ValueError(f'expected a score map (B, {self.out_channels}, h, w), '
                             f'got {tuple(inputs.shape)}')
        return inputs
