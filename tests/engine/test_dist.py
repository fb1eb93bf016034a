from mmengine.config import Config

from clipdense.engine.dist import prepare_distributed


def test_prepare_distributed_is_a_no_op_without_launcher():
    cfg = Config(dict(model=dict(type='X')))
    assert prepare_distributed(cfg, 'none') is False
    assert 'model_wrapper_cfg' not in cfg
