"""The vocabulary side of ReCo: class names, their dense-CLIP text
embeddings, the co-segmentation options and the cache of reference
embeddings (Shin et al., NeurIPS 2022)."""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn

from clipdense.registry import MODELS
from ..decode_heads.training_free_head import TrainingFreeHead
from ..text_encoders.openclip_text_base import parse_vocabulary
from .cosegmentation import COLUMN_SLICINGS

#: fine-to-coarse tables a config may name (ReCoHead's ``fine_to_coarse``):
#: name -> (module, function returning the table)
FINE_TO_COARSE_TABLES = {
    'cocostuff27': ('clipdense.datasets.coco_stuff27', 'fine171_to_coarse27'),
}

# ReCo's context concepts (configs/reco_*.yaml of the authors' code)
RECO_CONTEXT_CONCEPTS = ('tree', 'sky', 'building', 'road', 'person')


@MODELS.register_module()
class ReCoHead(TrainingFreeHead):
    """Vocabulary and options of a :class:`ReCo` segmentor.

    It owns no image weights: the segmentor computes the features and asks
    the head for the text embeddings, the options and the cached reference
    embeddings. :meth:`set_vocabulary` changes the classes at call time
    (the text is encoded at once so that bad names fail there; reference
    embeddings of new concepts are built at the next forward). The
    vocabulary, the text encoder and the training-free ``loss`` come from
    :class:`TrainingFreeHead`; the scores come from the :class:`ReCo`
    segmentor (retrieval and co-segmentation), not from :meth:`forward`.

    Args:
        text_encoder (dict | nn.Module): :class:`OpenCLIPTextEncoder` of the
            dense CLIP (language guidance and inference-time text
            attention); ReCo uses ``templates='maskclip'`` (80 ImageNet + 5
            scene templates).
        vocabulary (Sequence[str]): class names (comma = synonyms).
        num_classes (int, optional): must equal the vocabulary length.
        k (int): images retrieved per concept (ReCo: 50).
        context_concepts (Sequence[str]): concepts removed from the
            co-segmentation of the others (context elimination; ReCo:
            tree, sky, building, road, person).
        concept_aliases (dict): concepts that reuse another concept's
            reference (ReCo: ``{'vegetation': 'tree'}``).
        language_guidance (bool): weight pixels by the dense-CLIP text
            attention during co-segmentation (LGC).
        context_elimination (bool): weight pixels by
            ``prod (1 - sigmoid(cos(f, r_ctx)))`` (CE).
        dense_clip_inference (bool): multiply the reference scores by the
            text attention at inference (ReCo's default).
        text_attention_temperature (float): ``T`` of ``sigmoid(T cos)``
            (ReCo: 10).
        column_slicing (str): ``'reference_code'`` (default: the authors'
            slices, which produced the paper's numbers) or ``'per_image'``
            (clipdense's fix: each image's own columns), see
            :mod:`.cosegmentation`.
        progressive_context_elimination (bool): build the context
            references in order, each with the earlier ones eliminated
            (default, the authors' code: tree; sky without tree; building
            without tree and sky; ...). ``False`` (clipdense's reading of
            the paper's Sec. 3.3): every context reference with language
            guidance only.
        fine_to_coarse (Sequence[int] | str, optional): one output class per
            vocabulary entry, or the name of a table of
            :data:`FINE_TO_COARSE_TABLES` (``'cocostuff27'``: COCO-Stuff's
            171 classes to the 27 coarse ones,
            :func:`~clipdense.datasets.coco_stuff27.fine171_to_coarse27`); the prediction is the output class of the
            pixel's best vocabulary entry (argmax first, then the map), as
            the authors evaluate COCO-Stuff-27 (171 fine names, 27 coarse
            classes). ``seg_logits`` keep one channel per vocabulary entry.
            Dropped (with a warning) when the vocabulary changes.
        include_own_image (bool): count a pixel's own image in its score.
        affinity_chunk (int): rows of the affinity computed at once.
    """

    def __init__(self, text_encoder: Union[dict, nn.Module],
                 vocabulary: Sequence[str], num_classes: Optional[int] = None, *,
                 k: int = 50,
                 context_concepts: Sequence[str] = RECO_CONTEXT_CONCEPTS,
                 concept_aliases: Optional[Dict[str, str]] = None,
                 language_guidance: bool = True,
                 context_elimination: bool = True,
                 dense_clip_inference: bool = True,
                 text_attention_temperature: float = 10.0,
                 column_slicing: str = 'reference_code',
                 progressive_context_elimination: bool = True,
                 fine_to_coarse: Optional[Sequence[int]] = None,
                 include_own_image: bool = True,
                 affinity_chunk: int = 4096,
                 init_cfg=None):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f'k (images retrieved per concept) must be a positive '
                             f'integer, got {k!r}')
        if column_slicing not in COLUMN_SLICINGS:
            raise ValueError(f'column_slicing must be one of {COLUMN_SLICINGS}, '
                             f'got {column_slicing!r}')
        if not include_own_image and k < 2:
            raise ValueError('include_own_image=False needs k >= 2')
        # threshold: read by mmseg's postprocess for 1-class outputs
        super().__init__(text_encoder, vocabulary, num_classes=num_classes, threshold=0.5)
        self.k = int(k)
        self.context_concepts = tuple(parse_vocabulary(context_concepts)[0]) \
            if context_concepts else ()
        self.concept_aliases = dict(concept_aliases or {})
        self.language_guidance = bool(language_guidance)
        self.context_elimination = bool(context_elimination)
        self.dense_clip_inference = bool(dense_clip_inference)
        self.temperature = float(text_attention_temperature)
        self.column_slicing = column_slicing
        self.progressive_context_elimination = bool(progressive_context_elimination)
        self.fine_to_coarse = self._check_map(fine_to_coarse, self.num_classes)
        self.include_own_image = bool(include_own_image)
        self.affinity_chunk = int(affinity_chunk)
        self._refs: Dict[tuple, torch.Tensor] = {}

    @staticmethod
    def _check_map(fine_to_coarse, n):
        if fine_to_coarse is None:
            return None
        if isinstance(fine_to_coarse, str):
            if fine_to_coarse not in FINE_TO_COARSE_TABLES:
                raise ValueError(f'unknown fine_to_coarse table {fine_to_coarse!r}; give '
                                 f'one of {sorted(FINE_TO_COARSE_TABLES)} or a list of '
                                 'output class ids, one per vocabulary entry')
            import importlib
            module, fn = FINE_TO_COARSE_TABLES[fine_to_coarse]
            fine_to_coarse = getattr(importlib.import_module(module), fn)()
        m = [int(c) for c in fine_to_coarse]
        if len(m) != n:
            raise ValueError(f'fine_to_coarse has {len(m)} entries but the vocabulary has '
                             f'{n} classes; give one output class per vocabulary entry')
        if min(m) < 0 or max(m) > 254:
            raise ValueError('fine_to_coarse entries must be output class ids in 0..254')
        return tuple(m)

    @property
    def num_outputs(self) -> int:
        """Classes of the prediction (``pred_sem_seg``)."""
        return self.num_classes if self.fine_to_coarse is None else max(self.fine_to_coarse) + 1

    def on_vocabulary(self, parsed) -> None:
        """Reference embeddings of concepts not seen before are built at the
        next forward (those seen before are reused); a fine-to-coarse map
        of another vocabulary is dropped."""
        if self.fine_to_coarse is not None and \
                len(parsed.names) != len(self.fine_to_coarse):
            import warnings
            warnings.warn('ReCoHead: the new vocabulary replaces the fine classes; '
                          'fine_to_coarse is dropped (predictions index the vocabulary)')
            self.fine_to_coarse = None

    def class_embeddings(self, concepts: Optional[Sequence[str]] = None) -> torch.Tensor:
        """``(K, D)`` dense-CLIP text embeddings of ``concepts`` (default:
        the vocabulary)."""
        if not concepts:
            return self.encode_vocabulary().float()
        return self.text_encoder(tuple(concepts)).float()

    def option_key(self) -> tuple:
        """Everything besides weights and concept that a reference depends on."""
        return (self.k, self.language_guidance, self.context_elimination,
                self.context_concepts, self.temperature, self.column_slicing,
                self.include_own_image, tuple(self.text_encoder.templates),
                self.progressive_context_elimination)

    def clear_references(self):
        """Forget cached reference embeddings."""
        self._refs.clear()

    def forward(self, *args, **kwargs):
        raise RuntimeError('ReCoHead is driven by the ReCo segmentor; call the segmentor')
