"""DatasetVocabularyHook and ClassListSegDataset (OVSeg's zero-shot evaluation)."""
from types import SimpleNamespace

import pytest
import torch.nn as nn


class _Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.vocabulary = ('a', 'b')
        self.num_classes = self.out_channels = 2

    def set_vocabulary(self, names):
        self.vocabulary = tuple(names)
        self.num_classes = self.out_channels = len(names)


def _runner(classes):
    model = nn.Module()
    model.decode_head = _Head()
    model.num_classes = model.out_channels = 2
    ds = SimpleNamespace(metainfo=dict(classes=tuple(classes)))
    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=ds))
    return SimpleNamespace(model=model, test_loop=loop, val_loop=loop)


def test_hook_sets_the_dataset_vocabulary():
    from clipdense.engine import DatasetVocabularyHook
    runner = _runner(['wall', 'sky', 'pottedplant'])
    DatasetVocabularyHook().before_test(runner)
    assert runner.model.decode_head.vocabulary == ('wall', 'sky', 'pottedplant')
    assert runner.model.num_classes == 3
    DatasetVocabularyHook(vocabulary=['wall', 'sky', 'potted plant']).before_val(runner)
    assert runner.model.decode_head.vocabulary[-1] == 'potted plant'
    with pytest.raises(ValueError, match='one per class'):
        DatasetVocabularyHook(vocabulary=['wall']).before_test(runner)
    with pytest.raises(TypeError, match='list'):
        DatasetVocabularyHook(vocabulary='wall, sky')


def test_class_list_dataset(tmp_path):
    from clipdense.datasets import ClassListSegDataset
    (tmp_path / 'img').mkdir()
    (tmp_path / 'ann').mkdir()
    (tmp_path / 'names.txt').write_text('wall\nsky\n\nperson\n')
    ds = ClassListSegDataset(classes_file='names.txt', data_root=str(tmp_path),
                             data_prefix=dict(img_path='img', seg_map_path='ann'),
                             pipeline=[], lazy_init=True)
    assert ds.metainfo['classes'] == ('wall', 'sky', 'person')
    assert ds.ignore_index == 65535
    with pytest.raises(FileNotFoundError, match='one a'):
        ClassListSegDataset(classes_file='missing.txt', data_root=str(tmp_path),
                            pipeline=[], lazy_init=True)


def test_hook_vocabulary_file(tmp_path):
    from clipdense.engine import DatasetVocabularyHook
    f = tmp_path / 'names.txt'
    f.write_text('# a comment line\nroad, route\nsky\n\nwindow\n')
    runner = _runner(['road', 'sky', 'windowpane'])
    DatasetVocabularyHook(vocabulary_file=str(f)).before_test(runner)
    assert runner.model.decode_head.vocabulary == ('road, route', 'sky', 'window')
    # a relative name that is not a file here is looked up in clipdense's resources
    assert len(DatasetVocabularyHook(vocabulary_file='ovseg_names/voc20.txt').vocabulary) == 20
    with pytest.raises(ValueError, match='either'):
        DatasetVocabularyHook(vocabulary=['a'], vocabulary_file=str(f))
    with pytest.raises(FileNotFoundError, match='one name a line'):
        DatasetVocabularyHook(vocabulary_file=str(tmp_path / 'missing.txt'))
