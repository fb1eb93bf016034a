"""OVSeg paper configs: the authors' class names and comma handling, the
authors' CLIP-adaptation recipe."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from clipdense.testing import register_tiny_models
from clipdense.testing.runs import ROOT

register_tiny_models()

CFG = osp.join(ROOT, 'configs', 'ovseg')
PRE = 'ovseg_swin-b_vit-l14-openai_8xb4-120k_coco-stuff171-'


def _hook(cfg):
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'DatasetVocabularyHook']
    assert len(hooks) == 1
    return hooks[0]


def test_authors_class_names_files():
    from clipdense.datasets.ovseg_names import ovseg_class_names
    counts = dict(ade150=150, ade847=847, pc59=59, pc459=459, voc20=20, coco_stuff171=171)
    for name, n in counts.items():
        assert len(ovseg_class_names(name)) == n, name
    ade = ovseg_class_names('ade150')
    # detectron2's names, not mmseg's ("windowpane", "television receiver")
    assert ade[8] == 'window' and ade[89] == 'tv' and ade[6] == 'road, route'
    from mmseg.datasets import ADE20KDataset
    mm = [c.strip() for c in ADE20KDataset.METAINFO['classes']]
    assert sum(a != b for a, b in zip(ade, mm)) == 51
    coco = ovseg_class_names('coco_stuff171')
    assert 'wall-other' in coco and 'floor-wood' in coco and 'wall' not in coco
    assert ovseg_class_names('voc20')[10] == 'diningtable'
    with pytest.raises(ValueError, match='unknown'):
        ovseg_class_names('ade151')


def test_paper_configs_use_the_authors_names_and_whole_strings():
    from clipdense.datasets.ovseg_names import ovseg_class_names, read_class_names
    from clipdense.engine import DatasetVocabularyHook
    train = Config.fromfile(osp.join(CFG, PRE + '640x640.py'))
    assert train.model.decode_head.text_encoder.split_synonyms is False
    assert list(train.model.decode_head.train_vocabulary) == ovseg_class_names('coco_stuff171')
    for ds in ('ade150', 'voc20'):
        cfg = Config.fromfile(osp.join(CFG, f'{PRE}zeroshot-{ds}-640x640.py'))
        hook = _hook(cfg)
        assert DatasetVocabularyHook(vocabulary_file=hook['vocabulary_file']).vocabulary == \
            ovseg_class_names(ds)
        assert cfg.model.decode_head.text_encoder.split_synonyms is False
    # PC-59: mmseg's names are the authors' strings (in mmseg's label order)
    from mmseg.datasets import PascalContextDataset59
    assert sorted(PascalContextDataset59.METAINFO['classes']) == sorted(
        ovseg_class_names('pc59'))
    cfg = Config.fromfile(osp.join(CFG, f'{PRE}zeroshot-pc59-640x640.py'))
    assert 'vocabulary_file' not in _hook(cfg) and 'vocabulary' not in _hook(cfg)
    # ADE-847 / PC-459: the dataset reads the authors' names from the resources
    from clipdense.datasets.ovseg_names import resolve_class_names_file
    for ds in ('ade847', 'pc459'):
        cfg = Config.fromfile(osp.join(CFG, f'{PRE}zeroshot-{ds}-640x640.py'))
        f = cfg.test_dataloader.dataset.classes_file
        assert read_class_names(resolve_class_names_file(f)) == ovseg_class_names(ds)


def test_split_synonyms_switch():
    """``split_synonyms=False`` encodes "road, route" as one prompt (the
    authors); True averages "road" and "route" (clipdense)."""
    import torch.nn.functional as F

    from clipdense.models.text_encoders import OpenCLIPTextEncoder
    whole = OpenCLIPTextEncoder('clipdense-tiny-vit16', templates='single',
                                split_synonyms=False)
    split = OpenCLIPTextEncoder('clipdense-tiny-vit16', templates='single')
    split.load_state_dict(whole.state_dict())
    t = whole.templates[0]
    with torch.no_grad():
        one = F.normalize(whole.encode_text(whole.tokenize([t.format('road, route')])), dim=-1)
        parts = F.normalize(whole.encode_text(whole.tokenize([t.format('road'),
                                                              t.format('route')])), dim=-1)
        a = whole(['road, route', 'sky'])
        b = split(['road, route', 'sky'])
    assert torch.allclose(a[0], one[0], atol=1e-6)
    assert torch.allclose(b[0], F.normalize(parts.mean(0), dim=-1), atol=1e-6)
    assert not torch.allclose(a[0], b[0], atol=1e-3)
    assert torch.allclose(a[1], b[1], atol=1e-6)


def _adapt_cfg(tmp_path, **kw):
    from clipdense.models.pretraining import mask_adapted_clip_config
    ann = tmp_path / 'pairs.jsonl'
    ann.write_text(''.join('{"image": "x.png", "caption": "cup"}\n' for _ in range(1000)))
    return mask_adapted_clip_config('clipdense-tiny-vit16', None, ann_file='pairs.jsonl',
                                    data_root=str(tmp_path), image_size=64, epochs=5,
                                    batch_size=32, **kw)


def test_adaptation_recipe_is_the_authors(tmp_path):
    """lr 5e-6, wd 0.2 except norms / biases / 1-D / logit scale, 100 warm-up
    steps then cosine to 0 over the run, AMP on CUDA, RandomResizedCrop
    0.9-1, no clipping; the paper config holds the same recipe."""
    from mmengine.optim import build_optim_wrapper

    from clipdense.registry import MODELS
    cfg = _adapt_cfg(tmp_path)
    ow = cfg['optim_wrapper']
    assert ow['optimizer']['lr'] == 5e-6 and ow['optimizer']['weight_decay'] == 0.2
    assert 'clip_grad' not in ow
    assert ow['type'] == ('AmpOptimWrapper' if torch.cuda.is_available() else 'OptimWrapper')
    assert _adapt_cfg(tmp_path, amp=True)['optim_wrapper']['type'] == 'AmpOptimWrapper'
    pipe = cfg['train_dataloader']['dataset']['pipeline']
    assert pipe[1]['type'] == 'CLIPRandomResizedCrop' and tuple(pipe[1]['scale']) == (0.9, 1.0)
    assert cfg['train_dataloader']['drop_last'] is True
    total = 1000 // 32 * 5
    warm, cos = cfg['param_scheduler']
    assert (warm['type'], warm['end'], cos['type'], cos['begin'], cos['end'], cos['eta_min']) == \
        ('LinearLR', 100, 'CosineAnnealingLR', 100, total, 0.0)
    # the decay groups
    from mmengine.registry import init_default_scope
    init_default_scope('clipdense')
    model = MODELS.build(cfg['model'])
    wrapper = build_optim_wrapper(model, dict(ow, type='OptimWrapper'))
    decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    for n, wd in decay.items():
        p = dict(model.named_parameters())[n]
        no_decay = p.ndim < 2 or 'logit_scale' in n or n.endswith('.bias')
        assert wd == (0.0 if no_decay else 0.2), (n, wd)
    assert decay['clip.logit_scale'] == 0.0
    assert decay['clip.visual.conv1.weight'] == 0.2
    # mask prompt tuning: lr 0.05, wd 0
    mpt = _adapt_cfg(tmp_path, prompt_depth=2)
    assert mpt['optim_wrapper']['optimizer']['lr'] == 0.05
    assert mpt['optim_wrapper']['optimizer']['weight_decay'] == 0.0
    # clipdense's earlier recipe stays available by name
    old = _adapt_cfg(tmp_path, schedule='constant', grad_clip=1.0, crop_scale=None,
                     no_decay_norm_bias=False, amp=False)
    assert old['param_scheduler'] == [] and old['optim_wrapper']['clip_grad'] == \
        dict(max_norm=1.0)
    with pytest.raises(ValueError, match='schedule'):
        _adapt_cfg(tmp_path, schedule='poly')
    with pytest.raises(ValueError, match='lower batch_size'):
        _adapt_cfg(tmp_path, num_samples=10)
    # the paper config says the same
    paper = Config.fromfile(osp.join(
        CFG, 'ovseg-adapt_vit-l14-openai_4xb32-5e_coco-proposal-1cap-ft-224x224.py'))
    assert paper.optim_wrapper.type == 'AmpOptimWrapper'
    assert paper.optim_wrapper.optimizer.lr == 5e-6
    assert paper.optim_wrapper.paramwise_cfg.to_dict() == \
        __import__('clipdense.models.pretraining.mask_adapted_clip',
                   fromlist=['x']).OVSEG_ADAPT_PARAMWISE
    assert 'clip_grad' not in paper.optim_wrapper
    assert paper.param_scheduler[1].end == 442117 // 128 * 5
    mpt_paper = Config.fromfile(osp.join(
        CFG, 'ovseg-adapt_vit-l14-openai_4xb32-5e_coco-proposal-1cap-mpt-224x224.py'))
    assert mpt_paper.model.type == 'MaskPromptCLIP' and mpt_paper.model.prompt_depth == 3
    assert mpt_paper.optim_wrapper.optimizer.lr == 0.05


def test_schedule_values_follow_open_clip_cosine():
    """The learning rate the schedulers give per step is open_clip's
    ``cosine_lr`` (warm-up (i+1)/warmup vs mmengine's LinearLR differs by
    less than lr/warmup)."""
    from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR

    from clipdense.models.pretraining.mask_adapted_clip import ovseg_adaptation_schedule
    total, warm, lr = 300, 100, 5e-6
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    scheds = []
    for s in ovseg_adaptation_schedule(total, warm):
        kind = dict(s).pop('type')
        args = {k: v for k, v in s.items() if k != 'type'}
        scheds.append((LinearLR if kind == 'LinearLR' else CosineAnnealingLR)(opt, **args))
    for step in range(total):
        got = opt.param_groups[0]['lr']
        if step < warm:
            want = lr * (step + 1) / warm
        else:
            want = 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm))) * lr
        assert abs(got - want) <= lr / warm + 1e-12, (step, got, want)
        opt.step()
        for s in scheds:
            s.step()


def test_logit_scale_is_clamped_and_random_resized_crop(tmp_path):
    import numpy as np

    from clipdense.datasets.transforms import CLIPRandomResizedCrop
    from clipdense.models.pretraining import MaskAdaptedCLIP
    m = MaskAdaptedCLIP('clipdense-tiny-vit16')
    with torch.no_grad():
        m.clip.logit_scale.fill_(10.0)
    x = torch.randn(2, 3, 64, 64)
    m(x, [dict(caption='cup'), dict(caption='ball')], mode='loss')
    assert float(m.clip.logit_scale.detach()) == pytest.approx(math.log(100))
    t = CLIPRandomResizedCrop(32, scale=(0.9, 1.0))
    np.random.seed(0)
    img = np.random.randint(0, 255, (50, 40, 3), np.uint8)
    for _ in range(20):
        top, left, ch, cw = t.get_params(50, 40)
        assert 0.9 * 2000 * 0.97 <= ch * cw <= 2000 and 3 / 4 - 0.05 <= cw / ch <= 4 / 3 + 0.05
    out = t(dict(img=img))
    assert out['img'].shape == (32, 32, 3) and out['img_shape'] == (32, 32)
    with pytest.raises(ValueError, match='scale'):
        CLIPRandomResizedCrop(32, scale=(0.5, 1.5))


@pytest.mark.parametrize('prompt_depth', [0, 2])
def test_adaptation_trains_with_the_runner(tmp_path, prompt_depth):
    """The authors' recipe runs end to end through MMEngine's runner on
    stored crops (fine-tuning and mask prompt tuning): the schedule warms
    up and the trained parameters move."""
    import json

    import mmcv
    import numpy as np
    from mmengine.config import Config as C
    from mmengine.runner import Runner

    from clipdense.models.pretraining import mask_adapted_clip_config
    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        img[:, : 16 + i] = (124, 116, 103)
        mmcv.imwrite(img[:, :, ::-1], str(tmp_path / f'c{i}.png'))
        rows.append(json.dumps(dict(image=f'c{i}.png', caption=['cup', 'ball', 'sky'][i % 3])))
    (tmp_path / 'pairs.jsonl').write_text('\n'.join(rows) + '\n')
    cfg = mask_adapted_clip_config('clipdense-tiny-vit16', None, 'pairs.jsonl', str(tmp_path),
                                   image_size=64, epochs=2, batch_size=8,
                                   prompt_depth=prompt_depth, warmup_iters=1,
                                   work_dir=str(tmp_path / 'work'))
    cfg['model']['_scope_'] = 'clipdense'
    runner = Runner.from_cfg(C(cfg))
    name = 'mask_prompts' if prompt_depth else 'clip.visual.conv1.weight'
    before = dict(runner.model.named_parameters())[name].detach().clone()
    runner.train()
    after = dict(runner.model.named_parameters())[name].detach()
    assert not torch.allclose(before, after)
    lr = runner.optim_wrapper.get_lr()['lr'][0]
    # the last of 4 steps: cosine over steps 1-4 at step 3 gives a quarter of the lr
    assert lr == pytest.approx(0.25 * (0.05 if prompt_depth else 5e-6))
