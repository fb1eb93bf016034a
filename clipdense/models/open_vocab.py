"""The vocabulary of open-vocabulary models: one owner.

An *open-vocabulary module* is the segmentor itself, its ``decode_head`` or
any sub-module (looked for in that order) with ``vocabulary`` and
``set_vocabulary(names)`` (see :mod:`clipdense.apis.inference`, "The
open-vocabulary protocol"). This module finds it
(:func:`find_vocabulary_module`), gives it a new vocabulary and copies its
class count to the segmentor (:func:`apply_vocabulary`), which is what
``inference_model(..., vocabulary=...)``, ``demo/image_demo.py`` and
:class:`~clipdense.engine.DatasetVocabularyHook` do.
"""
from typing import Optional, Sequence

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
    open-vocabulary module, call its ``set_vocabulary`` (which checks the
    names) and copy the class count to the segmentor. Returns that module."""
    from .text_encoders.openclip_text_base import parse_vocabulary
    head = find_vocabulary_module(model)
    synonyms = parse_vocabulary(vocabulary)[1]  # empty / repeated names
    encoder = getattr(head, 'text_encoder', None)
    if encoder is not None:
        check_vocabulary_context(encoder, list(vocabulary), synonyms)
    head.set_vocabulary(vocabulary)
    sync_class_count(model, head)
    return head
