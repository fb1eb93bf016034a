"""Anomaly heat maps: drawing, the visualizer (tools/test.py --show-dir),
the demo's --task anomaly branch."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from clipdense.visualization.anomaly import (AnomalyLocalVisualizer,
                                             draw_anomaly_heatmap,
                                             guess_class_name, normalize_map)


def test_heatmap_colours_follow_the_map():
    img = np.full((20, 30, 3), 128, np.uint8)
    amap = np.zeros((10, 15), np.float32)
    amap[:, 10:] = 1.0  # right third hot (resized to the image)
    out = draw_anomaly_heatmap(img, amap, alpha=1.0)
    assert out.shape == img.shape and out.dtype == np.uint8
    # JET: cold = blue, hot = red (RGB order)
    assert out[10, 2, 2] > out[10, 2, 0]
    assert out[10, 28, 0] > out[10, 28, 2]
    gt = np.zeros((20, 30), np.uint8)
    gt[5:15, 5:15] = 1
    with_gt = draw_anomaly_heatmap(img, amap, gt, alpha=1.0)
    assert (with_gt[5, 5:15] == 255).all()  # white outline
    assert normalize_map(np.ones((3, 3))).max() == 0
    with pytest.raises(ValueError, match='alpha'):
        draw_anomaly_heatmap(img, amap, alpha=2)
    with pytest.raises(ValueError, match='2-D'):
        draw_anomaly_heatmap(img, amap[None])


def test_visualizer_writes_image(tmp_path):
    vis = AnomalyLocalVisualizer(name='anomaly_vis_test',
                                 vis_backends=[dict(type='LocalVisBackend')],
                                 save_dir=str(tmp_path))
    ds = SegDataSample()
    ds.pred_anomaly_map = PixelData(data=torch.rand(1, 8, 8))
    ds.gt_sem_seg = PixelData(data=torch.zeros(1, 8, 8, dtype=torch.uint8))
    ds.set_field(torch.tensor(0.7), 'pred_score')
    img = np.zeros((16, 16, 3), np.uint8)
    out = str(tmp_path / 'x.png')
    vis.add_datasample('x', img, ds, out_file=out)
    import mmcv
    assert mmcv.imread(out).shape == (16, 32, 3)
    vis.add_datasample('y', img, ds, step=3)
    assert osp.isfile(str(tmp_path / 'vis_data' / 'vis_image' / 'y_3.png'))
    with pytest.raises(ValueError, match='pred_anomaly_map'):
        vis.add_datasample('z', img, SegDataSample())


def test_guess_class_name():
    assert guess_class_name('/d/metal_nut/test/scratch/000.png') == 'metal nut'
    assert guess_class_name('photo.png') is None
