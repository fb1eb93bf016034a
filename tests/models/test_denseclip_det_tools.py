"""The synthetic DenseCLIP detection config end to end: a short training
through MMEngine's runner, then tools/test.py prints pycocotools' table."""
import os.path as osp
import re

import pytest
from mmengine.config import Config

from clipdense.testing.runs import ROOT

pytestmark = pytest.mark.slow

CONFIG = osp.join(ROOT, 'configs/denseclip_det/'
                  'denseclip-mask-rcnn_clip-synth-rn_1xb4-6e_synthetic-coco-128x128.py')


@pytest.fixture(scope='module')
def coco_world(tmp_path_factory):
    from clipdense.datasets.synthetic import generate_world
    out = tmp_path_factory.mktemp('world') / 'synthetic'
    generate_world(str(out), seed=0, size=64, num_train=4, num_val=2,
                   styles=('flat', ), parts=('coco', ), progress=False)
    return str(out) + '/'


def options(world):
    ann = osp.join(world, 'flat/annotations/instances_val.json')
    return {
        'model.backbone.pretrained': None,  # no tiny CLIP file in tests
        'model.text_encoder.pretrained': None,
        'train_dataloader.dataset.data_root': world,
        'train_dataloader.batch_size': 2,
        'val_dataloader.dataset.data_root': world,
        'test_dataloader.dataset.data_root': world,
        'val_evaluator.ann_file': ann,
        'test_evaluator.ann_file': ann,
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
    }


def test_train_then_tools_test_prints_coco_table(coco_world, tmp_path, capsys):
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    import importlib.util
    spec = importlib.util.spec_from_file_location('clipdense_test_tool',
                                                  osp.join(ROOT, 'tools', 'test.py'))
    test_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_tool)
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(options(coco_world))
    cfg.work_dir = str(tmp_path / 'work')
    with DefaultScope.overwrite_default_scope('mmdet'):
        Runner.from_cfg(cfg).train()
    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    capsys.readouterr()  # the end-of-training validation printed its own tables

    args = [CONFIG, ckpt, '--work-dir', str(tmp_path / 'test'), '--cfg-options']
    args += [f'{k}={"None" if v is None else v}' for k, v in options(coco_world).items()]
    metrics = test_tool.main(args)
    out = capsys.readouterr().out
    # pycocotools' standard summary, for boxes and for masks
    table = re.findall(r'Average Precision +\(AP\) @\[ IoU=0\.50:0\.95 \| area= +all', out)
    assert len(table) == 2, out[-3000:]
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)
