from .maskclip_head import MaskCLIPHead

__all__ = ['MaskCLIPHead']
