"""DenseCLIP Mask R-CNN (mmdet 3.x)."""
from mmdet.models.detectors import MaskRCNN

from clipdense.registry import MODELS
from .denseclip_det_base import DenseCLIPDetMixin


@MODELS.register_module()
class DenseCLIPMaskRCNN(DenseCLIPDetMixin, MaskRCNN):
    """Mask R-CNN with DenseCLIP's language-guided C5 (Rao et al., CVPR
    2022; the authors' ``DenseCLIP_MaskRCNN``).

    mmdet's :class:`~mmdet.models.detectors.MaskRCNN` whose C5 carries the
    pixel-text score map divided by ``tau`` (see
    :class:`~clipdense.models.detectors.denseclip_det_base.DenseCLIPDetMixin`),
    with the optional auxiliary segmentation loss. From a detection config
    (``default_scope='mmdet'``) use ``type='clipdense.DenseCLIPMaskRCNN'``.

    Args:
        backbone (dict): ``clipdense.OpenCLIPResNet`` (or, clipdense's
            extension, ``clipdense.OpenCLIPViT``) with
            ``joint_outputs=('global', 'dense')``.
        rpn_head, roi_head (dict): as MaskRCNN; the RoI head's bbox and
            mask heads have ``num_classes`` = K.
        neck (dict): mmdet ``FPN``; ``in_channels[-1]`` = C5 + K (the
            level ``score_concat_index`` gets the + K).
        text_encoder, context_decoder, vocabulary, num_contexts,
            context_init_std, tau, gamma_init, seg_loss, seg_loss_weight,
            seg_target_rounding, score_concat_index: DenseCLIP's arguments, see
            :class:`~clipdense.models.detectors.denseclip_det_base.DenseCLIPDetMixin`.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as MaskRCNN.
    """

    def __init__(self, backbone: dict, rpn_head: dict, roi_head: dict,
                 text_encoder: dict, context_decoder: dict, *, neck=None,
                 train_cfg=None, test_cfg=None, data_preprocessor=None,
                 init_cfg=None, **denseclip):
        super().__init__(backbone=backbone, rpn_head=rpn_head, roi_head=roi_head,
                         train_cfg=train_cfg, test_cfg=test_cfg, neck=neck,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        roi = self.roi_head
        self._init_denseclip(
            text_encoder, context_decoder, **denseclip,
            head_classes={
                'roi_head.bbox_head': getattr(getattr(roi, 'bbox_head', None),
                                              'num_classes', None),
                'roi_head.mask_head': getattr(getattr(roi, 'mask_head', None),
                                              'num_classes', None)})
