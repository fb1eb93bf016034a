"""ReCo (Shin, Xie and Albanie, NeurIPS 2022): retrieve images per concept
from an unlabelled pool, co-segment them into reference embeddings, segment
with language guidance and context elimination."""
from .cosegmentation import (context_weights, reference_embedding,
                             reference_scores, seed_scores, text_attention)
from .crf import DenseCRF
from .reco import ReCo
from .reco_head import RECO_CONTEXT_CONCEPTS, ReCoHead

__all__ = ['ReCo', 'ReCoHead', 'DenseCRF', 'RECO_CONTEXT_CONCEPTS',
           'reference_embedding', 'seed_scores', 'text_attention',
           'reference_scores', 'context_weights']
