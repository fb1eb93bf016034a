"""DenseCLIP RetinaNet (mmdet 3.x)."""
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
        backbone (dict): ``clipdense.OpenCLIPResNet`` (or, clipdense's
            extension, ``clipdense.OpenCLIPViT``) with
            ``joint_outputs=('global', 'dense')``.
        neck (dict): mmdet ``FPN``; ``in_channels[-1]`` = C5 + K (the
            level ``score_concat_index`` gets the + K).
        bbox_head (dict): ``RetinaHead`` with ``num_classes`` = K.
        text_encoder, context_decoder, vocabulary, num_contexts,
            context_init_std, tau, gamma_init, seg_loss, seg_loss_weight,
            seg_target_rounding, score_concat_index: DenseCLIP's arguments, see
            :class:`~clipdense.models.detectors.denseclip_det_base.DenseCLIPDetMixin`.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as RetinaNet.
    """

    def __init__(self, backbone: dict, neck: dict, bbox_head: dict,
                 text_encoder: dict, context_decoder: dict, *,
                 train_cfg=None, test_cfg=None, data_preprocessor=None,
                 init_cfg=None, **denseclip):
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._init_denseclip(
            text_encoder, context_decoder, **denseclip,
            head_classes={'bbox_head': getattr(self.bbox_head, 'num_classes', None)})
