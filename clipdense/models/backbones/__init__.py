from .openclip_resnet import OpenCLIPResNet
from .openclip_vit import OpenCLIPViT
from .timm_vit_tokens import TimmViTPatchTokens

__all__ = ['OpenCLIPResNet', 'OpenCLIPViT', 'TimmViTPatchTokens']
