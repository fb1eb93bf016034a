"""clipdense.utils.cfg_options: --cfg-options keys that do not exist are
refused with the closest valid key (issue 26)."""
import pytest
from mmengine.config import Config

from clipdense.utils.cfg_options import CfgOptionsError, check_cfg_options


@pytest.fixture(scope='module')
def cfg():
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return Config(dict(
        model=dict(type='EncoderDecoder',
                   backbone=dict(type='OpenCLIPResNet', arch='RN50'),
                   decode_head=dict(type='FCNHead', in_channels=8, channels=4,
                                    num_classes=3),
                   test_cfg=dict(mode='whole')),
        train_dataloader=dict(batch_size=2, dataset=dict(
            type='SyntheticSegDataset',
            pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=(8, 8))])),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        load_from=None))


@pytest.mark.parametrize('key', [
    'model.test_cfg.mode', 'model.test_cfg.slide_batch_size',  # known optional
    'model.decode_head.dropout_ratio',  # an argument left at its default
    'model.backbone.arch', 'train_dataloader.dataset.pipeline.1.scale',
    'default_hooks.checkpoint.max_keep_ckpts',  # new, close to nothing
    'env_cfg.cudnn_benchmark', 'load_from', 'allow_partial_load',
])
def test_valid_keys(cfg, key):
    check_cfg_options(cfg, {key: 1})


@pytest.mark.parametrize('key,msg', [
    ('model.test_cfg.labels_onyl', 'did you mean model.test_cfg.labels_only?'),
    ('model.test_cfg.mdoe', 'did you mean model.test_cfg.mode?'),
    ('model.decode_head.num_clases', 'did you mean model.decode_head.num_classes?'),
    ('model.bakbone.arch', 'did you mean model.backbone?'),
    ('train_dataloader.batch_sise', 'did you mean train_dataloader.batch_size?'),
    ('laod_from', 'did you mean load_from?'),
    ('model.decode_head.no_such_option', 'FCNHead.*takes no argument'),
    ('train_dataloader.dataset.pipeline.5.scale', 'out of range'),
    ('train_dataloader.dataset.pipeline.x', 'is a list'),
    ('model.test_cfg.mode.x', 'is a value'),
])
def test_typos_refused_with_closest(cfg, key, msg):
    with pytest.raises(CfgOptionsError, match=msg):
        check_cfg_options(cfg, {key: 1})
