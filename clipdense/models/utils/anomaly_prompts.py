"""State words and templates of zero-shot anomaly prompts.

* ``'anovl'``: AnoVL's unified domain-aware contrastive state prompts (Deng
  et al., 2023, Sec. 3.2; ``prompt_ensemble.py`` of hq-deng/AnoVL): 7 normal
  and 7 anomalous states, 22 template forms over three domain nouns - for
  objects "industrial photo", "industrial image", "manufacturing image";
  for textures "industrial photo", "textural photo", "surface picture" -
  i.e. 66 templates x 7 states a side.
* ``'winclip'``: WinCLIP's compositional prompt ensemble (Jeong et al.,
  CVPR 2023, Sec. 3.2 and App.): 7 normal / 4 anomalous states x 22
  generic photo templates.
* ``'clip'``: the plain CLIP baseline, one prompt a side.
"""
from typing import Dict, Optional, Sequence, Tuple

NORMAL_STATES = ('normal {}', 'flawless {}', 'perfect {}', 'unblemished {}',
                 '{} without flaw', '{} without defect', '{} without damage')
ANOMALOUS_STATES = ('damaged {}', 'abnormal {}', 'imperfect {}', 'blemished {}',
                    '{} with flaw', '{} with defect', '{} with damage')

WINCLIP_NORMAL_STATES = ('{}', 'flawless {}', 'perfect {}', 'unblemished {}',
                         '{} without flaw', '{} without defect',
                         '{} without damage')
WINCLIP_ANOMALOUS_STATES = ('damaged {}', '{} with flaw', '{} with defect',
                            '{} with damage')

# MVTec AD's texture categories (AnoVL's texture domain)
TEXTURE_CLASSES = ('carpet', 'leather', 'grid', 'tile', 'wood')

OBJECT_NOUNS = ('industrial photo', 'industrial image', 'manufacturing image')
TEXTURE_NOUNS = ('industrial photo', 'textural photo', 'surface picture')


def _article(word: str) -> str:
    return 'an' if word[:1].lower() in 'aeiou' else 'a'


def template_forms(noun: str, period: bool = True) -> Tuple[str, ...]:
    """The 22 template forms of one domain noun (``'photo'`` gives
    WinCLIP's generic templates); ``{}`` is the state phrase. In the order
    of AnoVL's ``prompt_ensemble.py`` (the order of the sentences fixes the
    rows of the adapter's text basis); ``period`` ends each with ``'.'``
    (AnoVL's have none)."""
    a = _article(noun)
    forms = [f'a cropped {noun} of the {{}}', f'a cropped {noun} of a {{}}',
             f'a close-up {noun} of a {{}}', f'a close-up {noun} of the {{}}',
             f'a bright {noun} of a {{}}', f'a bright {noun} of the {{}}',
             f'a dark {noun} of the {{}}', f'a dark {noun} of a {{}}',
             f'a jpeg corrupted {noun} of a {{}}', f'a jpeg corrupted {noun} of the {{}}',
             f'a blurry {noun} of the {{}}', f'a blurry {noun} of a {{}}',
             f'{a} {noun} of a {{}}', f'{a} {noun} of the {{}}',
             f'{a} {noun} of a small {{}}', f'{a} {noun} of the small {{}}',
             f'{a} {noun} of a large {{}}', f'{a} {noun} of the large {{}}',
             f'{a} {noun} of the {{}} for visual inspection',
             f'{a} {noun} of a {{}} for visual inspection',
             f'{a} {noun} of the {{}} for anomaly detection',
             f'{a} {noun} of a {{}} for anomaly detection']
    end = '.' if period else ''
    return tuple(f + end for f in forms)


PROMPT_STYLES = ('anovl', 'winclip', 'clip')


def state_prompts(cls_name: str, style: str = 'anovl',
                  texture_classes: Sequence[str] = TEXTURE_CLASSES,
                  period: Optional[bool] = None) -> Dict[str, Tuple[str, ...]]:
    """Normal and anomalous prompt sentences of one class, template-major
    (every state of the first template, then of the next, as AnoVL's
    ``prompt_ensemble.py`` orders them).

    Args:
        cls_name (str): object / texture name (AnoVL prompts with the raw
            folder name, ``'metal_nut'``).
        style (str): one of :data:`PROMPT_STYLES`.
        texture_classes (Sequence[str]): names that use AnoVL's texture
            domain templates (``'anovl'`` only).
        period (bool, optional): end the sentences with ``'.'``; default
            ``False`` for ``'anovl'`` (AnoVL's templates have none), ``True``
            for ``'winclip'`` and ``'clip'``.

    Returns:
        dict: ``{'normal': (...), 'anomalous': (...)}`` sentences.
    """
    name = str(cls_name).strip()
    if not name:
        raise ValueError('the class name for anomaly prompts is empty')
    if period is None:
        period = style != 'anovl'
    end = '.' if period else ''
    if style == 'clip':
        return {'normal': (f'a photo of a normal {name}{end}',),
                'anomalous': (f'a photo of a damaged {name}{end}',)}
    if style == 'winclip':
        forms = template_forms('photo', period)
        normal, anomalous = WINCLIP_NORMAL_STATES, WINCLIP_ANOMALOUS_STATES
    elif style == 'anovl':
        texture = name.lower() in {t.lower() for t in texture_classes}
        nouns = TEXTURE_NOUNS if texture else OBJECT_NOUNS
        forms = tuple(f for n in nouns for f in template_forms(n, period))
        normal, anomalous = NORMAL_STATES, ANOMALOUS_STATES
    else:
        raise ValueError(f'unknown prompt style {style!r}; choose from {PROMPT_STYLES}')
    return {'normal': tuple(t.format(s.format(name)) for t in forms for s in normal),
            'anomalous': tuple(t.format(s.format(name)) for t in forms for s in anomalous)}
