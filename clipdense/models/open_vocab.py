"""The vocabulary of open-vocabulary models: one owner.

An *open-vocabulary module* is the segmentor itself, its ``decode_head`` or
any sub-module (looked for in that order) with ``vocabulary`` and
``set_vocabulary(names)`` (see :mod:`clipdense.apis.inference`, "The
open-vocabulary protocol"). This module finds it
(:func:`find_vocabulary_module`), gives it a new vocabulary and copies its
class count to the segmentor (:func:`apply_vocabulary`), which is what
``inference_model(..., vocabulary=...)``, ``demo/image_demo.py`` and
:class:`~clipdense.engine.DatasetVocabularyHook` do.

:class:`OpenVocabMixin` is that module's vocabulary side, written once:
checking the names, building the text encoder from a config or a module,
the cached text embeddings, the class count and ``set_vocabulary``.
"""
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn


def check_vocabulary_context(encoder, names: Sequence[str],
                             synonyms: Optional[Sequence[Sequence[str]]] = None):
    """Refuse class names that do not fit in the text encoder's context.

    A CLIP text tower reads at most ``context_length`` tokens (77 for
    OpenAI/LAION CLIPs) including its start and end tokens; a longer text is
    cut. A class *name* that alone does not fit cannot be encoded
    meaningfully, so it is an error (a prompt template that pushes a fitting
    name over the limit only warns, in the text encoder). Encoders without
    an open_clip ``SimpleTokenizer`` are not checked.

    Args:
        encoder: a text encoder with ``tokenizer`` and ``context_length``.
        names (Sequence[str]): the vocabulary entries.
        synonyms (Sequence[Sequence[str]], optional): the synonyms of each
            entry (from ``parse_vocabulary``); default: the entries.

    Raises:
        ValueError: naming the entry, its token count and the context.
    """
    tokenizer = getattr(encoder, 'tokenizer', None)
    ctx = getattr(encoder, 'context_length', None)
    try:
        from open_clip.tokenizer import SimpleTokenizer
    except ImportError:  # pragma: no cover
        return
    if ctx is None or not isinstance(tokenizer, SimpleTokenizer):
        return
    if synonyms is None:
        synonyms = [(n, ) for n in names]
    for i, (entry, syn) in enumerate(zip(names, synonyms)):
        for s in syn:
            n = len(tokenizer.encode(s))
            if n + 2 > ctx:
                shown = s if len(s) <= 60 else s[:57] + '...'
                raise ValueError(
                    f'class #{i} {shown!r} is {n} tokens long; with the start and '
                    f'end tokens it needs {n + 2}, more than the text context of '
                    f'{ctx} tokens of this CLIP. Use a shorter class name (a few '
                    'words; put alternatives as synonyms, not as one long text)')


class ParsedVocabulary(NamedTuple):
    """A checked vocabulary: the entries as given, the stripped names and
    the synonyms of each (``'sofa, couch'`` -> ``('sofa', 'couch')``)."""
    vocabulary: Tuple[str, ...]
    names: Tuple[str, ...]
    synonyms: Tuple[Tuple[str, ...], ...]


def build_text_encoder(text_encoder: Union[dict, nn.Module]) -> nn.Module:
    """A text encoder from a config dict (built in ``MODELS``) or a module
    (used as is).

    Raises:
        TypeError: anything else.
    """
    if isinstance(text_encoder, nn.Module):
        return text_encoder
    if isinstance(text_encoder, dict):
        from clipdense.registry import MODELS
        return MODELS.build(text_encoder)
    raise TypeError('text_encoder must be a config dict or a module, '
                    f'got {type(text_encoder).__name__}')


def check_vocabulary(vocabulary: Sequence[str],
                     encoder: Optional[nn.Module] = None) -> ParsedVocabulary:
    """Parse ``vocabulary`` (a list of names, no empty or repeated name) and
    refuse a name longer than ``encoder``'s text context."""
    from .text_encoders.openclip_text_base import parse_vocabulary
    names, synonyms = parse_vocabulary(vocabulary)
    if encoder is not None:
        check_vocabulary_context(encoder, names, synonyms)
    return ParsedVocabulary(tuple(vocabulary), names, synonyms)


def check_num_classes(num_classes: Optional[int], parsed: ParsedVocabulary) -> int:
    """``num_classes`` when it matches the vocabulary, else its length.

    Raises:
        ValueError: ``num_classes`` given and different.
    """
    k = len(parsed.names)
    if num_classes is not None and int(num_classes) != k:
        raise ValueError(
            f'num_classes={num_classes} but the vocabulary has {k} classes '
            f'({list(parsed.vocabulary)}); num_classes must equal the vocabulary '
            'length (or be left out)')
    return k


class OpenVocabMixin:
    """The vocabulary of an open-vocabulary module, in one place.

    Owns the class names (checked once per change), the text encoder
    (built from a config or given as a module), the text embeddings of the
    vocabulary (the text encoder's :class:`TextEmbeddingCache`: a vocabulary
    seen before does not run the text tower again) and the class count
    (``num_classes`` and ``out_channels`` follow the vocabulary).

    Use: before ``super().__init__`` (nothing may be set on an
    ``nn.Module`` yet) call :meth:`resolve_vocabulary`; after it
    :meth:`adopt_vocabulary`. Subclasses refine :meth:`check_new_vocabulary`
    (extra rules, e.g. MaskCLIP's ``bg_index``) and :meth:`on_vocabulary`
    (state that depends on the classes, e.g. ReCo's fine-to-coarse map).
    """

    vocabulary: Tuple[str, ...]

    def resolve_vocabulary(self, text_encoder: Union[dict, nn.Module],
                           vocabulary: Optional[Sequence[str]] = None,
                           num_classes: Optional[int] = None, *,
                           fallback: Optional[Sequence[str]] = None):
        """Build the text encoder and check the vocabulary (default: the
        text encoder's ``vocabulary``, else ``fallback``) and ``num_classes``.

        Returns:
            tuple: ``(encoder, ParsedVocabulary)``.

        Raises:
            ValueError: no vocabulary, a bad one, or ``num_classes`` not
                its length.
        """
        encoder = build_text_encoder(text_encoder)
        if vocabulary is None:
            vocabulary = getattr(encoder, 'vocabulary', None) or fallback
        if vocabulary is None:
            raise ValueError(f'{type(self).__name__} needs a vocabulary: give '
                             '`vocabulary=[...]` to the head or to its text encoder')
        parsed = check_vocabulary(vocabulary, encoder)
        check_num_classes(num_classes, parsed)
        return encoder, parsed

    def adopt_vocabulary(self, encoder: nn.Module, parsed: ParsedVocabulary) -> None:
        """Keep ``encoder`` and the checked vocabulary (after
        ``nn.Module.__init__``)."""
        self.text_encoder = encoder
        self._set_parsed(parsed)

    def _set_parsed(self, parsed: ParsedVocabulary) -> None:
        self._parsed_vocabulary = parsed
        self.vocabulary = parsed.vocabulary
        self.num_classes = self.out_channels = len(parsed.names)

    @property
    def vocabulary_names(self) -> Tuple[str, ...]:
        """The stripped class names of the vocabulary (checked once)."""
        return self._parsed_vocabulary.names

    def check_new_vocabulary(self, parsed: ParsedVocabulary) -> None:
        """Extra rules for a new vocabulary; raise ``ValueError``."""

    def on_vocabulary(self, parsed: ParsedVocabulary) -> None:
        """Called after the vocabulary changed."""

    def set_vocabulary(self, vocabulary: Sequence[str]) -> None:
        """Use new class names (the open-vocabulary protocol of
        :mod:`clipdense.apis.inference`): checked once, encoded at once (so
        that a bad name fails here; cached per vocabulary), never touching
        the image side; ``num_classes`` and ``out_channels`` follow.

        Raises:
            ValueError: empty vocabulary, empty or repeated names, a name
                longer than the text context, or a rule of the subclass.
        """
        parsed = check_vocabulary(vocabulary, self.text_encoder)
        self.check_new_vocabulary(parsed)
        self.encode_vocabulary(parsed)
        self._set_parsed(parsed)
        self.on_vocabulary(parsed)

    def encode_vocabulary(self, parsed: Optional[ParsedVocabulary] = None) -> torch.Tensor:
        """``(K, D)`` L2-normalised text embeddings of ``parsed`` (default:
        the current vocabulary), from the text encoder's cache."""
        parsed = self._parsed_vocabulary if parsed is None else parsed
        encode = getattr(self.text_encoder, 'encode_names', None)
        if encode is not None:  # already parsed: do not check the names again
            return encode(parsed.names, parsed.synonyms)
        return self.text_encoder(parsed.vocabulary)

    def class_embeddings(self) -> torch.Tensor:
        """``(K, D)`` L2-normalised text embeddings of the vocabulary."""
        return self.encode_vocabulary()


def find_vocabulary_module(model: nn.Module, required: bool = True) -> Optional[nn.Module]:
    """The open-vocabulary module of ``model``: the model itself, its
    ``decode_head``, or the first sub-module with ``set_vocabulary``.

    Raises:
        TypeError: none found and ``required``.
    """
    def ok(m):
        return m is not None and callable(getattr(m, 'set_vocabulary', None))
    if ok(model):
        return model
    head = getattr(model, 'decode_head', None)
    if ok(head):
        return head
    for m in model.modules():
        if m is not model and ok(m):
            return m
    if required:
        raise TypeError(f'{type(model).__name__} has no open-vocabulary module '
                        '(nothing with set_vocabulary()); a fixed-class model '
                        'cannot take a vocabulary')
    return None


def sync_class_count(model: nn.Module, head: nn.Module) -> None:
    """Copy ``num_classes`` / ``out_channels`` of the decode head ``head`` to
    the segmentor (mmseg's ``EncoderDecoder`` copies them at build time and
    its slide inference reads them)."""
    if head is model or head is not getattr(model, 'decode_head', None):
        return
    for attr in ('num_classes', 'out_channels'):
        if hasattr(model, attr) and hasattr(head, attr):
            setattr(model, attr, getattr(head, attr))


def apply_vocabulary(model: nn.Module, vocabulary: Sequence[str]) -> nn.Module:
    """Give ``model`` the class names ``vocabulary``: find its
    open-vocabulary module, call its ``set_vocabulary`` (an
    :class:`OpenVocabMixin` checks the names there, once) and copy the class
    count to the segmentor. Returns that module."""
    head = find_vocabulary_module(model)
    if not isinstance(head, OpenVocabMixin):
        # a module of its own making: check the names here as the mixin would
        check_vocabulary(vocabulary, getattr(head, 'text_encoder', None))
    head.set_vocabulary(vocabulary)
    sync_class_count(model, head)
    return head
