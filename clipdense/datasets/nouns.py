"""Offline noun extraction from captions (for OVSeg's mask-noun mining).

OVSeg (Liang et al., CVPR 2023, Sec. 3.2) extracts the nouns of COCO
captions with NLTK's tagger, an *open* vocabulary (12K nouns from one
caption per image). NLTK's tagger needs a data download, which clipdense
cannot do at run time, so :class:`OpenNounExtractor` (the default of
:func:`~clipdense.apis.ovseg_mining.mine_mask_noun_pairs`) tags captions
with an open English lexicon instead: the word-form table of the
`lemminflect <https://pypi.org/project/lemminflect/>`_ package
(``lemminflect/resources/lemma_lu.csv.gz``, MIT licence, derived from the
NIH SPECIALIST Lexicon: about 35K lower-case noun forms with their lemmas
and their other parts of speech). The table is read as data (no code of
the package runs, nothing is downloaded) and nothing in it comes from an
evaluation class list. Context rules pick the noun reading of ambiguous
words (see :class:`OpenNounExtractor`); it is a heuristic tagger, not
NLTK's, so its precision and recall differ.

:class:`NounExtractor` is the closed alternative: it finds the nouns of a
list the caller gives (no default list: a list written from the evaluation
classes would leak the test vocabulary into training).
"""
import gzip
import os.path as osp
import re
from functools import lru_cache
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

# nouns of the whole picture, not of a region (never mined)
IMAGE_LEVEL_NOUNS = ('photo', 'picture', 'image', 'rendering', 'scene', 'view',
                     'close-up', 'closeup', 'shot', 'snapshot', 'photograph')
# nouns of quantity, position or kind: they name no region of their own
# ("a group of people", "on the side of the road")
NON_REGION_NOUNS = ('lot', 'lots', 'couple', 'group', 'bunch', 'pair', 'number', 'kind',
                    'type', 'variety', 'side', 'front', 'back', 'middle', 'top', 'bottom',
                    'edge', 'end', 'corner', 'center', 'centre', 'area', 'part', 'piece',
                    'way', 'something', 'thing', 'things', 'one', 'ones', 'other', 'others',
                    'lots', 'day', 'time', 'while', 'background', 'foreground', 'color',
                    'colour', 'shape', 'size', 'left', 'right')
# words after which an ambiguous noun/verb form is a noun
_DETERMINERS = frozenset(
    'a an the this that these those his her their its my our your some any every each '
    'no another several many few both all such'.split())
# words after which an ambiguous form is a verb
_VERB_CONTEXT = frozenset(
    'to is are was were be been being am can could will would may might must shall '
    'should do does did who which'.split())
# words after which an ambiguous -s form that follows a noun is a verb
# ("a man rides a horse", "a dog runs with a ball")
_AFTER_VERB = _DETERMINERS | frozenset(
    'with at from into onto through across along over up down out off away around '
    'toward towards'.split())
_WORD = re.compile(r"[a-z][a-z\-']*")


def lemminflect_table_path() -> str:
    """Path of lemminflect's word-form table, found without importing the
    package (its module code is not needed)."""
    import importlib.util
    spec = importlib.util.find_spec('lemminflect')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            'the open noun lexicon needs the lemminflect package (pip install lemminflect; '
            'it is in requirements/runtime.txt); or pass a noun list to NounExtractor')
    for root in spec.submodule_search_locations:
        path = osp.join(root, 'resources', 'lemma_lu.csv.gz')
        if osp.isfile(path):
            return path
    raise FileNotFoundError('lemminflect is installed without resources/lemma_lu.csv.gz')


@lru_cache(maxsize=2)
def load_word_forms(path: Optional[str] = None) -> Dict[str, Dict[str, Tuple[str, ...]]]:
    """``{form: {category: lemmas}}`` of a lemminflect-format table (lines
    ``form,category,lemma/lemma``; categories noun, verb, adj, adv, aux).
    Capitalised forms (proper nouns) are left out: captions are
    lower-cased before lookup."""
    path = path or lemminflect_table_path()
    table: Dict[str, Dict[str, Tuple[str, ...]]] = {}
    with gzip.open(path, 'rt', encoding='utf-8') as f:
        for line in f:
            parts = line.strip().split(',')
            if len(parts) != 3:
                continue
            form, cat, lemmas = parts
            if not form or form != form.lower():
                continue
            table.setdefault(form, {})[cat] = tuple(lemmas.split('/'))
    if not table:
        raise ValueError(f'no word forms in {path}')
    return table


class OpenNounExtractor:
    """Nouns of captions from an open lexicon (default: lemminflect's table).

    Each caption word is looked up (lower-cased). Function words and forms
    without a noun reading are skipped. Ambiguous forms are resolved from
    their neighbours: an ``-ing`` form that is also a verb is a verb unless a
    determiner precedes it ("a building"); a word that is also an adjective
    is a modifier when a noun follows ("a red ball"); a word that is also a
    verb is a verb after an auxiliary or "to", and after a noun when it ends
    in ``-s`` and a determiner or preposition follows ("a man rides a
    horse"), otherwise a noun. The lemma of a form is its first noun lemma
    that is not also its verb lemma ("leaves" -> "leaf"). Runs of nouns become one
    compound, the last word lemmatised ("traffic lights" -> "traffic
    light"), at most ``max_words`` long. Image-level and non-region nouns
    ("photo", "top", "group") are dropped.

    Args:
        table (dict, optional): ``{form: {category: lemmas}}``; default
            :func:`load_word_forms` of lemminflect's table.
        stop_nouns (Iterable[str]): nouns never returned.
        max_words (int): longest compound.

    Example::

        >>> OpenNounExtractor()('A man rides a horse past two knives and traffic lights.')
        ['man', 'horse', 'knife', 'traffic light']
    """

    def __init__(self, table: Optional[Dict[str, Dict[str, Tuple[str, ...]]]] = None,
                 stop_nouns: Iterable[str] = IMAGE_LEVEL_NOUNS + NON_REGION_NOUNS,
                 max_words: int = 2):
        self.table = load_word_forms() if table is None else table
        if not isinstance(self.table, dict) or not self.table:
            raise ValueError('the word-form table is empty')
        self.stop: FrozenSet[str] = frozenset(s.lower() for s in stop_nouns)
        self.max_words = max(1, int(max_words))

    @property
    def lexicon(self) -> FrozenSet[str]:
        """All noun lemmas of the table."""
        return frozenset(lem for v in self.table.values() for lem in v.get('noun', ()))

    def _cats(self, word: Optional[str]) -> Dict[str, Tuple[str, ...]]:
        return self.table.get(word, {}) if word else {}

    def _is_noun(self, words: Sequence[str], i: int, prev_noun: bool) -> bool:
        w = words[i]
        cats = self._cats(w)
        if 'noun' not in cats:
            return False
        prev = words[i - 1] if i > 0 else None
        nxt = words[i + 1] if i + 1 < len(words) else None
        if 'verb' in cats and w.endswith('ing'):
            return prev in _DETERMINERS
        if 'adj' in cats and nxt is not None and 'noun' in self._cats(nxt) and \
                not (nxt.endswith('ing') and 'verb' in self._cats(nxt)):
            return False
        if 'verb' in cats:
            if prev in _VERB_CONTEXT:
                return False
            if prev_noun and w.endswith('s') and not w.endswith('ss') and \
                    nxt in _AFTER_VERB:
                return False
        return True

    def _noun_lemma(self, word: str) -> str:
        cats = self.table[word]
        verbs = set(cats.get('verb', ()))
        own = [lem for lem in cats['noun'] if lem not in verbs]
        return (own or list(cats['noun']))[0]

    def __call__(self, caption: str) -> List[str]:
        """Nouns of one caption, in order, without repeats."""
        if not isinstance(caption, str):
            raise TypeError(f'caption must be a string, got {type(caption).__name__}')
        words = _WORD.findall(caption.lower())
        tags = []
        for i in range(len(words)):
            tags.append(self._is_noun(words, i, bool(tags) and tags[-1]))
        found: List[str] = []
        i = 0
        while i < len(words):
            if not tags[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(words) and tags[j + 1] and j + 1 - i < self.max_words:
                j += 1
            head = self._noun_lemma(words[j])
            phrase = ' '.join(words[i:j] + [head])
            if head not in self.stop and phrase not in self.stop and phrase not in found:
                found.append(phrase)
            i = j + 1
        return found


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
    """Find the nouns of a given list in captions (closed vocabulary).

    Args:
        nouns (Sequence[str], optional): the noun list.
        noun_file (str, optional): a list file instead (one noun a line).
        stop_nouns (Iterable[str]): nouns never returned (default: image-
            level words such as "photo").
        max_words (int): longest phrase tried (e.g. "traffic light" = 2).

    One of ``nouns`` / ``noun_file`` is required: there is no default list
    (OVSeg mines open nouns, :class:`OpenNounExtractor`).

    Example::

        >>> NounExtractor(nouns=['knife', 'mug'])('Two knives and a red mug.')
        ['knife', 'mug']
    """

    def __init__(self, nouns: Optional[Sequence[str]] = None,
                 noun_file: Optional[str] = None,
                 stop_nouns: Iterable[str] = IMAGE_LEVEL_NOUNS,
                 max_words: int = 3):
        if nouns is not None and noun_file is not None:
            raise ValueError('give either nouns or noun_file, not both')
        if nouns is None and noun_file is None:
            raise ValueError('NounExtractor needs a noun list (nouns= or noun_file=); for '
                             'open nouns use OpenNounExtractor')
        if nouns is None:
            nouns = read_noun_file(noun_file)
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
