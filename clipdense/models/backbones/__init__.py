from .openclip_resnet import OpenCLIPResNet
from .openclip_vit import OpenCLIPViT

__all__ = ['OpenCLIPResNet', 'OpenCLIPViT']
