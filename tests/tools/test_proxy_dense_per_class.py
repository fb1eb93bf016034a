"""tools/analysis_tools/proxy_dense_per_class.py: the per-class numbers from
a written confusion matrix and label maps, and the whole script on untrained
weights and a tiny world."""
import json
import os.path as osp
import runpy
import sys

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from clipdense.datasets.synthetic import generate_world, spec
from clipdense.models.utils.clip_archs import register_clip_archs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL_DIR = osp.join(ROOT, 'tools/analysis_tools')
TOOL = runpy.run_path(osp.join(TOOL_DIR, 'proxy_dense_per_class.py'))


def test_per_class_from_a_confusion_matrix():
    # rows: ground truth, columns: prediction
    conf = np.array([[6, 2, 0], [0, 0, 0], [2, 0, 0]])
    iou, pred, gt = TOOL['per_class'](conf)
    assert iou[0] == pytest.approx(100 * 6 / 10)
    assert iou[1] == 0.0  # predicted, never true
    assert iou[2] == 0.0
    assert pred == pytest.approx([80, 20, 0])
    assert gt == pytest.approx([80, 0, 20])
    assert TOOL['per_class'](np.zeros((2, 2)))[0] == [None, None]


def test_label_shares_leave_out_ignore(tmp_path):
    a = np.full((4, 4), 255, np.uint8)
    a[:2] = 1
    a[2, :2] = 0
    (tmp_path / 'sub').mkdir()
    Image.fromarray(a).save(tmp_path / 'sub' / 'x.png')
    share, n = TOOL['label_shares'](str(tmp_path), 3)
    assert n == 1 and share == pytest.approx([20, 80, 0])
    with pytest.raises(SystemExit, match='no PNG'):
        TOOL['label_shares'](str(tmp_path / 'empty'), 3)


def test_script_on_untrained_weights(tmp_path):
    world = generate_world(str(tmp_path / 'world'), size=128, num_train=2,
                           num_val=1, styles=('flat', ), parts=('seg', ),
                           progress=False)
    register_clip_archs()
    torch.manual_seed(0)
    w = str(tmp_path / 'w.pt')
    torch.save(open_clip.create_model('clipdense-synth-vit8').state_dict(), w)
    labels = tmp_path / 'labels'
    labels.mkdir()
    Image.fromarray(np.full((8, 8), 4, np.uint8)).save(labels / 'a.png')
    out = tmp_path / 'pc'
    sys.path.insert(0, TOOL_DIR)
    rows, labs = TOOL['main'](['--candidate', f'untrained={w}',
                               '--labels', f'one class={labels}',
                               '--data-root', world['root'],
                               '--out', str(out)])
    assert [r['path'] for r in rows] == ['naive dense', 'MaskCLIP value']
    k = len(spec.CLASSES)
    for r in rows:
        assert len(r['iou']) == k
        assert sum(r['predicted_share']) == pytest.approx(100)
    assert labs[0]['share'][4] == pytest.approx(100)
    md = open(str(out) + '.md').read()
    assert '| untrained | MaskCLIP value |' in md and 'one class' in md
    saved = json.load(open(str(out) + '.json'))
    assert saved['classes'] == list(spec.CLASSES)
    assert sum(saved['ground_truth_share']) == pytest.approx(100)
