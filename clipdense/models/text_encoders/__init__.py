from .anomaly_prompt_encoder import AnomalyPromptEncoder
from .openclip_context_text_encoder import OpenCLIPContextTextEncoder
from .openclip_text_encoder import OpenCLIPTextEncoder

__all__ = ['OpenCLIPTextEncoder', 'OpenCLIPContextTextEncoder',
           'AnomalyPromptEncoder']
