"""DenseCLIP RetinaNet (mmdet 3.x)."""
from typing import Optional, Sequence

from mmdet.models.detectors import RetinaNet

from clipdense.registry import MODELS
from .denseclip_det_base import DenseCLIPDetMixin


@MODELS.register_module()
class DenseCLIPRetinaNet(DenseCLIPDetMixin, RetinaNet):
    """RetinaNet with DenseCLIP's language-guided C5 (Rao et al., CVPR
    2022; the authors' ``DenseCLIP_RetinaNet``).

    mmdet's :class:`~mmdet.models.detectors.RetinaNet` whose C5 carries the
    pixel-text score map divided by ``tau`` (see
    :class:`~clipdense.models.detectors.denseclip_det_base.DenseCLIPDetMixin`),
    with the optional auxiliary segmentation loss. From a detection config
    (``default_scope='mmdet'``) use ``type='clipdense.DenseCLIPRetinaNet'``.

    Args:
        backbone (dict): ``clipdense.OpenCLIPResNet`` with
            ``joint_outputs=('global', 'dense')``.
        neck (dict): mmdet ``FPN``; ``in_channels[-1]`` = C5 + K.
        bbox_head (dict): ``RetinaHead`` with ``num_classes`` = K.
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
        train_cfg, test_cfg, data_preprocessor, init_cfg: as RetinaNet.
    """

    def __init__(self, backbone: dict, neck: dict, bbox_head: dict,
                 text_encoder: dict, context_decoder: dict, *,
                 vocabulary: Optional[Sequence[str]] = None,
                 num_contexts: int = 8, context_init_std: float = 0.02,
                 tau: float = 0.07, gamma_init: float = 1e-4,
                 seg_loss: bool = False, seg_loss_weight: float = 1.0,
                 seg_target_rounding: str = 'cover',
                 train_cfg=None, test_cfg=None, data_preprocessor=None,
                 init_cfg=None):
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._init_denseclip(
            text_encoder, context_decoder, vocabulary=vocabulary,
            num_contexts=num_contexts, context_init_std=context_init_std, tau=tau,
            gamma_init=gamma_init, seg_loss=seg_loss,
            seg_loss_weight=seg_loss_weight, seg_target_rounding=seg_target_rounding,
            head_classes={'bbox_head': getattr(self.bbox_head, 'num_classes', None)})
