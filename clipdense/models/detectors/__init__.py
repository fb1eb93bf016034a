from .denseclip_mask_rcnn import DenseCLIPMaskRCNN
from .denseclip_retinanet import DenseCLIPRetinaNet

__all__ = ['DenseCLIPRetinaNet', 'DenseCLIPMaskRCNN']
