"""Set an open-vocabulary model's classes from the evaluated dataset."""
from typing import Optional, Sequence

from mmengine.hooks import Hook

from clipdense.models.open_vocab import apply_vocabulary
from clipdense.registry import HOOKS


@HOOKS.register_module()
class DatasetVocabularyHook(Hook):
    """Before validation / testing, give the model's open-vocabulary module
    (anything with ``set_vocabulary``, e.g. :class:`OVSegHead`) the class
    names of the dataset being evaluated, so one trained model is evaluated
    zero-shot on several datasets (OVSeg's protocol) without listing every
    vocabulary in its config.

    Args:
        vocabulary (Sequence[str], optional): names to use instead of the
            dataset's (e.g. "potted plant" for VOC's "pottedplant"); must
            have as many entries as the dataset has classes.
        vocabulary_file (str, optional): the same from a file, one name a
            line (``#`` lines skipped, commas kept); a relative path that
            does not exist is looked up in clipdense's resources, e.g.
            ``'ovseg_names/ade150.txt'`` (the names OVSeg's authors use).
    """

    priority = 'NORMAL'

    def __init__(self, vocabulary: Optional[Sequence[str]] = None,
                 vocabulary_file: Optional[str] = None):
        if isinstance(vocabulary, str):
            raise TypeError('vocabulary must be a list of class names, not one string '
                            '(a file of names goes to vocabulary_file)')
        if vocabulary is not None and vocabulary_file is not None:
            raise ValueError('give either vocabulary or vocabulary_file, not both')
        if vocabulary_file is not None:
            from clipdense.datasets.ovseg_names import (read_class_names,
                                                        resolve_class_names_file)
            vocabulary = read_class_names(resolve_class_names_file(vocabulary_file))
        self.vocabulary = list(vocabulary) if vocabulary is not None else None

    def _apply(self, runner, loop_name):
        loop = getattr(runner, loop_name)
        classes = list(loop.dataloader.dataset.metainfo['classes'])
        names = self.vocabulary or classes
        if len(names) != len(classes):
            raise ValueError(f'DatasetVocabularyHook: {len(names)} names given for a '
                             f'dataset with {len(classes)} classes; give one per class')
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        apply_vocabulary(model, names)

    def before_val(self, runner) -> None:
        self._apply(runner, 'val_loop')

    def before_test(self, runner) -> None:
        self._apply(runner, 'test_loop')
