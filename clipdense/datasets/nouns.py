"""Offline noun extraction from captions (for OVSeg's mask-noun mining).

OVSeg (Liang et al., CVPR 2023, Sec. 3.2) extracts nouns from COCO captions
with NLTK. clipdense does it without downloads (no tagger models): caption
words are matched, longest phrase first, against a noun list shipped in the
repository (``clipdense/datasets/resources/nouns_en.txt``: objects and scene
regions, including the class names of COCO-Stuff, ADE20K, Pascal Context,
VOC and the synthetic world), after lower-casing and a simple plural ->
singular step. Image-level words ("photo", "picture", "scene", ...) are
dropped: they name the whole image, not a region. Unlike a POS tagger it
finds only listed nouns (its recall is the list's); pass your own list for
other vocabularies.
"""
import os.path as osp
import re
from typing import Iterable, List, Optional, Sequence, Tuple

DEFAULT_NOUN_FILE = osp.join(osp.dirname(osp.abspath(__file__)), 'resources', 'nouns_en.txt')
# nouns of the whole picture, not of a region (never mined)
IMAGE_LEVEL_NOUNS = ('photo', 'picture', 'image', 'rendering', 'scene', 'view',
                     'close-up', 'closeup', 'shot', 'snapshot', 'photograph')
_WORD = re.compile(r"[a-z][a-z\-']*")


def read_noun_file(path: str) -> List[str]:
    """Nouns of a list file (one a line, ``#`` comments)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'noun list {path} not found (one noun a line)')
    out = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip().lower()
            if line:
                out.append(' '.join(line.split()))
    if not out:
        raise ValueError(f'noun list {path} is empty')
    return out


def singular_candidates(word: str) -> Tuple[str, ...]:
    """``word`` and its possible singulars (``knives`` -> ``knife``,
    ``cherries`` -> ``cherry``, ``glasses`` -> ``glass``, ``cups`` -> ``cup``)."""
    cands = [word]
    if word.endswith('ves') and len(word) > 4:
        cands += [word[:-3] + 'fe', word[:-3] + 'f']
    if word.endswith('ies') and len(word) > 4:
        cands.append(word[:-3] + 'y')
    if word.endswith('es') and len(word) > 3:
        cands.append(word[:-2])
    if word.endswith('s') and not word.endswith('ss') and len(word) > 2:
        cands.append(word[:-1])
    return tuple(cands)


class NounExtractor:
    """Find listed nouns in captions.

    Args:
        nouns (Sequence[str], optional): the noun list; default the shipped
            file (:data:`DEFAULT_NOUN_FILE`).
        noun_file (str, optional): a list file instead.
        stop_nouns (Iterable[str]): nouns never returned (default: image-
            level words such as "photo").
        max_words (int): longest phrase tried (e.g. "traffic light" = 2).

    Example::

        >>> NounExtractor()('Two knives and a red mug on the grass.')
        ['knife', 'mug', 'grass']
    """

    def __init__(self, nouns: Optional[Sequence[str]] = None,
                 noun_file: Optional[str] = None,
                 stop_nouns: Iterable[str] = IMAGE_LEVEL_NOUNS,
                 max_words: int = 3):
        if nouns is not None and noun_file is not None:
            raise ValueError('give either nouns or noun_file, not both')
        if nouns is None:
            nouns = read_noun_file(noun_file or DEFAULT_NOUN_FILE)
        if isinstance(nouns, str):
            raise TypeError('nouns must be a list of nouns, not one string')
        self.stop = {s.lower() for s in stop_nouns}
        self.nouns = {' '.join(n.lower().split()) for n in nouns} - self.stop
        if not self.nouns:
            raise ValueError('the noun list is empty')
        self.max_words = max(1, min(int(max_words),
                                    max(len(n.split()) for n in self.nouns)))

    def _lookup(self, words: Sequence[str]) -> Optional[str]:
        *head, last = words
        for cand in singular_candidates(last):
            phrase = ' '.join(head + [cand])
            if phrase in self.nouns:
                return phrase
        return None

    def __call__(self, caption: str) -> List[str]:
        """Nouns of one caption, in order, without repeats."""
        if not isinstance(caption, str):
            raise TypeError(f'caption must be a string, got {type(caption).__name__}')
        words = _WORD.findall(caption.lower())
        found, i = [], 0
        while i < len(words):
            hit = None
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                hit = self._lookup(words[i:i + n])
                if hit is not None:
                    i += n
                    break
            if hit is None:
                i += 1
            elif hit not in found:
                found.append(hit)
        return found
