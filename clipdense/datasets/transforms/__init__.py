from .formatting import PackCaptionInputs

__all__ = ['PackCaptionInputs']
