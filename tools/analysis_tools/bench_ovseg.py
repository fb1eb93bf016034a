"""OVSeg's ablation in miniature on the synthetic world.

    python tools/analysis_tools/bench_ovseg.py [--proposal-iters 400] [--adapt-epochs 8]

1. the synthetic world and the tiny CLIP (the quickstart's caches);
2. the MaskFormer proposal model trained on the seen classes only
   (``configs/ovseg/ovseg_clip-synth-rn_1xb4-400_synthetic-seen-128x128.py``;
   cached in ``work_dirs/ovseg/proposals``);
3. (masked proposal, noun) pairs mined from the captions of the flat train
   images (offline noun list) with the proposal model and the vanilla CLIP;
4. CLIP adaptation: fine-tuning the image tower on the mined pairs with the
   text tower frozen (mask prompt tuning does not apply: the tiny CLIP is a
   ResNet);
5. evaluation on the flat val images (all 13 classes; seen / unseen mIoU,
   hIoU): proposals alone (lambda 0), plain CLIP crops (lambda 1), the
   ensemble (lambda 0.7), the ensemble with the adapted CLIP, and (an
   extra ablation) the ensemble with a CLIP adapted on seen nouns only.

Writes ``results/ovseg_synthetic.md`` and ``.json``.
"""
import argparse
import io
import json
import os
import os.path as osp
import sys
import time

import numpy as np

from clipdense.apis import synthetic_pipeline as sp
from clipdense.engine.bench_harness import build_runner, cache_key, make_log
from clipdense.engine.bench_harness import write_results as write_files

CONFIG = osp.join(sp.ROOT, 'configs/ovseg/'
                  'ovseg_clip-synth-rn_1xb4-400_synthetic-seen-128x128.py')
WORK = osp.join(sp.ROOT, 'work_dirs', 'ovseg')


log = make_log('bench_ovseg')


def _hash(*parts):
    return cache_key(*parts)


def base_cfg(args, clip_weights):
    from mmengine.config import Config
    cfg = Config.fromfile(getattr(args, 'config', CONFIG))
    # the proposal backbone: the tiny CLIP ResNet in both modes (with the
    # proxy it is a network separate from the CLIP, as OVSeg's Swin-B / R101c)
    cfg.model.backbone.pretrained = getattr(args, 'backbone_weights', None) or clip_weights
    cfg.model.decode_head.text_encoder.pretrained = clip_weights
    cfg.model.decode_head.clip_classifier.pretrained = clip_weights
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[dl].dataset.data_root = args.data_root
    it = args.proposal_iters
    cfg.train_cfg.max_iters = it
    cfg.train_cfg.val_interval = it + 1  # no validation while training
    cfg.default_hooks.checkpoint.interval = it
    cfg.param_scheduler[-1]['end'] = it
    if getattr(args, 'proxy', False):
        cfg.randomness = dict(seed=args.seed)
    return cfg


def step_proposals(args, clip_weights):

    from clipdense.engine.checkpoint import find_resumable_checkpoint
    work = osp.join(getattr(args, 'work', WORK), 'proposals')
    key = _hash(CONFIG, clip_weights, args.proposal_iters) if not getattr(
        args, 'proxy', False) else _hash(args.config, clip_weights, args.backbone_weights,
                                         args.proposal_iters, args.seed)
    stamp = osp.join(work, 'done.json')
    if osp.isfile(stamp):
        info = json.load(open(stamp))
        if info.get('key') == key and osp.isfile(info['checkpoint']):
            log(f'proposal model: cached ({info["checkpoint"]})')
            if getattr(args, 'proxy', False):
                return info['checkpoint'], info.get('seconds'), info.get('losses')
            return info['checkpoint'], info.get('seconds')
    cfg = base_cfg(args, clip_weights)
    cfg.work_dir = work
    cfg.experiment_name = f'proposals_{int(time.time())}'
    t0 = time.perf_counter()
    runner = build_runner(cfg)
    runner.train()
    secs = time.perf_counter() - t0
    ckpt = find_resumable_checkpoint(work)
    losses = loss_history(runner)
    os.makedirs(work, exist_ok=True)
    with open(stamp, 'w') as f:
        json.dump(dict(key=key, checkpoint=ckpt, seconds=secs, losses=losses), f)
    log(f'proposal model: trained in {secs:.0f}s ({ckpt})')
    if getattr(args, 'proxy', False):
        return ckpt, secs, losses
    return ckpt, secs


def loss_history(runner, key='train/loss', windows=4):
    """The total training loss as the mean of ``windows`` equal chunks of
    the run (first to last): whether it had flattened."""
    try:
        vals = np.asarray(runner.message_hub.log_scalars[key].data[0], float)
    except (KeyError, AttributeError, IndexError):
        return None
    if vals.size == 0:
        return None
    chunks = np.array_split(vals, min(windows, vals.size))
    return dict(iters=int(vals.size), chunk_means=[float(c.mean()) for c in chunks],
                last=float(vals[-1]))


def step_mine(args, clip_weights, ckpt):
    from clipdense.apis import init_model
    from clipdense.apis.ovseg_mining import mine_mask_noun_pairs
    out = osp.join(getattr(args, 'work', WORK), 'mined')
    cap_file = osp.join(args.data_root, 'captions', 'seg_flat_train.jsonl')
    key = _hash(ckpt, cap_file, 'v1')
    stamp = osp.join(out, 'done.json')
    if osp.isfile(stamp) and json.load(open(stamp)).get('key') == key:
        log('mined pairs: cached')
        return json.load(open(stamp))['summary']
    records = [json.loads(line) for line in open(cap_file) if line.strip()]
    records = [dict(r, image=r.get('image') or r.get('file_name')) for r in records]
    model = init_model(base_cfg(args, clip_weights), ckpt)
    t0 = time.perf_counter()
    res = mine_mask_noun_pairs(model, records, out, data_root=args.data_root,
                               progress=log)
    summary = mining_summary(args, res, out)
    summary['seconds'] = time.perf_counter() - t0
    with open(stamp, 'w') as f:
        json.dump(dict(key=key, summary=summary), f)
    log(f'mined {summary["pairs"]} pairs in {summary["seconds"]:.0f}s')
    return summary


def mining_summary(args, res, out):
    """Pair counts and purity: the share of pairs whose mask's majority
    ground-truth class is the noun (only nouns that are classes count)."""
    import mmcv

    from clipdense.datasets.synthetic import spec
    per_noun, hits, total = {}, 0, 0
    for p in res['pairs']:
        n = p['caption']
        per_noun.setdefault(n, [0, 0])
        per_noun[n][0] += 1
        if n not in spec.CLASSES:
            continue
        ann = osp.join(args.data_root, p['source'].replace('img_dir', 'ann_dir'))
        gt = mmcv.imread(ann, flag='unchanged')
        m = mmcv.imread(osp.join(out, p['mask']), flag='unchanged') > 0
        vals = gt[m]
        vals = vals[vals != 255]
        ok = bool(vals.size) and spec.CLASSES[int(np.bincount(vals).argmax())] == n
        per_noun[n][1] += int(ok)
        hits += int(ok)
        total += 1
    return dict(pairs=len(res['pairs']), images=res['num_images'],
                nouns=res['nouns'], ann_file=res['ann_file'],
                purity=hits / max(total, 1),
                per_noun={k: dict(pairs=v[0], correct=v[1]) for k, v in per_noun.items()})


# the adaptation recipe: the authors' (warm-up + cosine, no decay on norms /
# biases / logit scale, RandomResizedCrop 0.9-1, no clipping, AMP on CUDA) or
# the one clipdense used before (constant lr, decay on every parameter,
# gradient clip 1.0, a plain resize)
RECIPES = dict(
    ovseg=dict(),
    constant=dict(schedule='constant', grad_clip=1.0, crop_scale=None,
                  no_decay_norm_bias=False, amp=False))


def step_adapt(args, clip_weights, mined, name, nouns=None):
    """Fine-tune the CLIP's image tower on the mined pairs (text frozen)."""
    import torch
    from mmengine.config import Config

    from clipdense.fileio import atomic_write_bytes
    from clipdense.models.pretraining import (export_open_clip_state_dict,
                                              mask_adapted_clip_config)
    from clipdense.models.region_classifiers import MaskedCropCLIP
    root = getattr(args, 'work', WORK)
    arch = getattr(args, 'arch', 'clipdense-synth-rn')
    work = osp.join(root, name)
    out = osp.join(root, f'{name}.pt')
    ann = mined['ann_file']
    if nouns is not None:
        ann = osp.join(root, 'mined', f'pairs_{name}.jsonl')
        rows = [json.loads(line) for line in open(mined['ann_file'])]
        with open(ann, 'w') as f:
            for r in rows:
                if r['caption'] in nouns:
                    f.write(json.dumps(r) + '\n')
    hp = dict(epochs=args.adapt_epochs, lr=args.adapt_lr, batch=args.adapt_batch,
              dedup=not args.plain_clip_loss, recipe=args.recipe)
    if getattr(args, 'proxy', False):
        hp.update(seed=args.seed, arch=arch)
    key = _hash(clip_weights, ann, hp)
    stamp = osp.join(work, 'done.json')
    if osp.isfile(out) and osp.isfile(stamp) and json.load(open(stamp)).get('key') == key:
        log(f'{name}: cached ({out})')
        if getattr(args, 'proxy', False):
            return out, json.load(open(stamp)).get('seconds'), json.load(open(stamp)).get('losses')
        return out, json.load(open(stamp)).get('seconds')
    size = MaskedCropCLIP(arch).image_size
    cfg = Config(mask_adapted_clip_config(
        arch, clip_weights, ann_file=ann,
        data_root=osp.join(root, 'mined'), image_size=size, epochs=args.adapt_epochs,
        batch_size=args.adapt_batch, lr=args.adapt_lr, weight_decay=0.2,
        work_dir=work, dedup_nouns=not args.plain_clip_loss,
        **RECIPES[args.recipe]))
    cfg.experiment_name = f'{name}_{int(time.time())}'
    if getattr(args, 'proxy', False):
        cfg.randomness = dict(seed=args.seed)
    t0 = time.perf_counter()
    runner = build_runner(cfg)
    runner.train()
    secs = time.perf_counter() - t0
    state = export_open_clip_state_dict({'state_dict': runner.model.state_dict()})
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(out, buf.getvalue())
    losses = loss_history(runner)
    with open(stamp, 'w') as f:
        json.dump(dict(key=key, seconds=secs, losses=losses), f)
    log(f'{name}: trained in {secs:.0f}s -> {out}')
    if getattr(args, 'proxy', False):
        return out, secs, losses
    return out, secs


def step_prompts(args, ft_weights, mined, name='mask_prompts'):
    """OVSeg's mask prompt tuning (Sec. 3.3; ViT CLIPs only) on the
    fine-tuned CLIP, every CLIP weight frozen: the authors' recipe as
    :func:`mask_adapted_clip_config` encodes it (depth 3, lr 0.05, wd 0,
    prompts from N(0, 0.02)), for the fine-tuning's epochs and batch."""
    import torch
    from mmengine.config import Config

    from clipdense.fileio import atomic_write_bytes
    from clipdense.models.pretraining import mask_adapted_clip_config
    from clipdense.models.region_classifiers import MaskedCropCLIP
    root = args.work
    work = osp.join(root, name)
    out = osp.join(root, f'{name}.pt')
    hp = dict(epochs=args.adapt_epochs, batch=args.adapt_batch, depth=args.prompt_depth,
              recipe=args.recipe, seed=args.seed, arch=args.arch)
    key = _hash(ft_weights, mined['ann_file'], hp)
    stamp = osp.join(work, 'done.json')
    if osp.isfile(out) and osp.isfile(stamp) and json.load(open(stamp)).get('key') == key:
        info = json.load(open(stamp))
        log(f'{name}: cached ({out})')
        return out, info.get('seconds'), info.get('losses')
    size = MaskedCropCLIP(args.arch).image_size
    recipe = {k: v for k, v in RECIPES[args.recipe].items() if k != 'no_decay_norm_bias'}
    cfg = Config(mask_adapted_clip_config(
        args.arch, ft_weights, ann_file=mined['ann_file'],
        data_root=osp.join(root, 'mined'), image_size=size, epochs=args.adapt_epochs,
        batch_size=args.adapt_batch, prompt_depth=args.prompt_depth, work_dir=work,
        **recipe))
    cfg.experiment_name = f'{name}_{int(time.time())}'
    cfg.randomness = dict(seed=args.seed)
    t0 = time.perf_counter()
    runner = build_runner(cfg)
    runner.train()
    secs = time.perf_counter() - t0
    buf = io.BytesIO()
    torch.save(runner.model.prompt_state(), buf)
    atomic_write_bytes(out, buf.getvalue())
    losses = loss_history(runner)
    with open(stamp, 'w') as f:
        json.dump(dict(key=key, seconds=secs, losses=losses), f)
    log(f'{name}: trained in {secs:.0f}s -> {out}')
    return out, secs, losses


def merged_checkpoint(ckpt, clip_file, out, prompts=None):
    """The proposal checkpoint with its CLIP branch replaced (OVSeg's
    ``ovseg_replace_clip.py``), and the learnt mask prompts when given."""
    import torch

    from clipdense.fileio import safe_torch_load
    state = safe_torch_load(ckpt, map_location='cpu')
    clip = safe_torch_load(clip_file, map_location='cpu')
    sd = dict(state['state_dict'])
    prefix = 'decode_head.clip_classifier.tower.'
    n = 0
    for k, v in clip.items():
        if k.startswith('visual.') and prefix + k in sd:
            sd[prefix + k] = v
            n += 1
    if n == 0:
        raise RuntimeError(f'no CLIP branch keys replaced in {ckpt}')
    if prompts is not None:
        sd['decode_head.clip_classifier.mask_prompts'] = safe_torch_load(
            prompts, map_location='cpu')['mask_prompts']
    torch.save(dict(meta=state.get('meta', {}), state_dict=sd), out)
    return out


def evaluate(args, clip_weights, ckpt, lam, prompts=None):
    cfg = base_cfg(args, clip_weights)
    cfg.model.decode_head.ensemble_weight = lam
    if prompts is not None:
        cfg.model.decode_head.clip_classifier.prompt_depth = args.prompt_depth
        cfg.model.decode_head.clip_classifier.prompt_weights = prompts
    cfg.work_dir = osp.join(getattr(args, 'work', WORK), 'eval')
    if getattr(args, 'max_val', None):
        cfg.test_dataloader.dataset.indices = list(range(args.max_val))
    cfg.load_from = ckpt
    cfg.experiment_name = f'eval_{int(time.time() * 1000)}'
    cfg.default_hooks.logger.interval = 1000
    stamp = None
    if getattr(args, 'proxy', False):
        # per-seed evaluations are cached (seeds may run in separate processes
        # and be gathered by one run over all seeds)
        key = _hash(args.config, clip_weights, args.backbone_weights, ckpt, lam, prompts,
                    getattr(args, 'max_val', None), args.prompt_depth, 'eval-v1')
        stamp = osp.join(cfg.work_dir, f'metrics_{key}.json')
        if osp.isfile(stamp):
            return json.load(open(stamp))
    runner = build_runner(cfg)
    metrics = runner.test()
    out = {k: float(v) for k, v in metrics.items()}
    if stamp is not None:
        with open(stamp, 'w') as f:
            json.dump(out, f)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # relative to the repository root, as the quickstart caches them
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--work-dir', default='work_dirs/quickstart',
                        help='the quickstart work dir (tiny CLIP cache)')
    parser.add_argument('--results', default='results')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--proposal-iters', type=int, default=400)
    parser.add_argument('--adapt-epochs', type=int, default=8)
    parser.add_argument('--adapt-lr', type=float, default=5e-5)
    parser.add_argument('--adapt-batch', type=int, default=32)
    parser.add_argument('--lam', type=float, default=0.7,
                        help='ensemble weight (OVSeg: 0.7 on ADE, 0.6 on PC/VOC)')
    parser.add_argument('--recipe', choices=sorted(RECIPES), default='ovseg',
                        help="CLIP adaptation recipe: the authors' (default) or the "
                        'constant-lr one of earlier clipdense runs')
    parser.add_argument('--plain-clip-loss', action='store_true',
                        help="OVSeg's plain CLIP loss instead of merging repeated nouns")
    parser.add_argument('--clip', choices=('tiny', 'proxy'), default='tiny',
                        help="the method's CLIP: the quickstart's tiny CLIP ResNet "
                        '(results/ovseg_synthetic.*) or the proxy CLIP ViT of issue #25 '
                        '(results/ovseg_proxy.*, mask prompt tuning on, --seeds)')
    parser.add_argument('--proxy-weights', default='work_dirs/proxy/proxy_clip.pt',
                        help='the proxy CLIP (`make proxy-clip`)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='--clip proxy: seeds of proposal training + mining + '
                        'adaptation')
    parser.add_argument('--prompt-depth', type=int, default=3,
                        help='--clip proxy: mask prompt tuning depth (OVSeg: 3)')
    parser.add_argument('--proxy-work-dir', default='work_dirs/ovseg_proxy')
    parser.add_argument('--note', default='',
                        help='--clip proxy: a note for the results (why a claim does not '
                        'show)')
    parser.add_argument('--crop-diagnostic', action='store_true',
                        help='--clip proxy --render-only: add the CLIP branch\'s accuracy on '
                        'ground-truth-mask crops of the val images (tiny CLIP, vanilla and '
                        'adapted proxy)')
    parser.add_argument('--render-only', action='store_true',
                        help='--clip proxy: rewrite the .md/.json from the .json of the '
                        'last run (e.g. with a --note)')
    parser.add_argument('--max-val', type=int, default=None,
                        help='--clip proxy: evaluate on the first N val images (tests)')
    args = parser.parse_args(argv)
    args.fresh, args.tiny = False, False
    os.chdir(sp.ROOT)
    if args.clip == 'proxy' and args.render_only:
        with open(osp.join(args.results, 'ovseg_proxy.json')) as f:
            last = json.load(f)
        from clipdense.datasets.synthetic import spec
        diag = last.get('crop_diagnostic')
        if args.crop_diagnostic:
            from clipdense.utils import register_all_modules
            register_all_modules(init_default_scope=False)
            diag = crop_diagnostic(args, [p['seed'] for p in last['per_seed']])
        return write_proxy_results(args, last['command'], last['per_seed'],
                                   last['wall_seconds'], spec, diag)
    if args.clip == 'proxy':
        return main_proxy(args, argv)
    t0 = time.perf_counter()
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from clipdense.datasets.synthetic import spec

    world = sp.step_world(args)
    clip_weights = sp.step_clip(args, world)
    ckpt, prop_secs = step_proposals(args, clip_weights)
    mined = step_mine(args, clip_weights, ckpt)
    adapted, adapt_secs = step_adapt(args, clip_weights, mined, 'adapted_clip')
    seen_nouns = [n for n in mined['nouns'] if n not in spec.UNSEEN_CLASSES]
    adapted_seen, adapt_seen_secs = step_adapt(args, clip_weights, mined,
                                               'adapted_clip_seen_nouns', seen_nouns)
    os.makedirs(osp.join(WORK, 'eval'), exist_ok=True)
    ck_adapted = merged_checkpoint(ckpt, adapted, osp.join(WORK, 'eval', 'adapted.pth'))
    ck_seen = merged_checkpoint(ckpt, adapted_seen, osp.join(WORK, 'eval', 'adapted_seen.pth'))
    lam = args.lam
    rows = []
    for name, ck, weight in [
            ('proposals alone (MaskFormer classes, lambda=0)', ckpt, 0.0),
            ('plain CLIP on masked crops (lambda=1)', ckpt, 1.0),
            (f'ensemble, vanilla CLIP (lambda={lam})', ckpt, lam),
            ('adapted CLIP on masked crops (lambda=1)', ck_adapted, 1.0),
            (f'ensemble, adapted CLIP (lambda={lam})', ck_adapted, lam),
            (f'ensemble, CLIP adapted on seen nouns only (lambda={lam})', ck_seen, lam)]:
        log(f'evaluating: {name}')
        m = evaluate(args, clip_weights, ck, weight)
        rows.append(dict(variant=name, **{k: m.get(k) for k in (
            'mIoU', 'mIoU_seen', 'mIoU_unseen', 'hIoU', 'aAcc')}))
        log(f'  {rows[-1]}')
    wall = time.perf_counter() - t0
    cmd = 'python tools/analysis_tools/bench_ovseg.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    write_results(args, cmd.strip(), rows, mined, dict(
        proposal_train_seconds=prop_secs, adapt_seconds=adapt_secs,
        adapt_seen_seconds=adapt_seen_secs, wall_seconds=wall), spec)


def write_results(args, cmd, rows, mined, timing, spec):

    def f(v):
        return '' if v is None else f'{v:.2f}'
    lines = ['# OVSeg on the synthetic world (the paper\'s ablation in miniature)', '',
             f'Command: `{cmd}`', '',
             'Proposal model: MaskFormer head (text-cosine classes + learnt no-object, '
             'Hungarian matching) on the frozen tiny CLIP ResNet, trained on the '
             f'{len(spec.SEEN_CLASSES)} seen classes of the flat style '
             f'({args.proposal_iters} iterations, batch 4). Evaluated on the 50 flat '
             'val images over all 13 classes; unseen = '
             f'{", ".join(spec.UNSEEN_CLASSES)}. mIoU in %. Tiny CLIP: the one a fresh '
             '`make quickstart` trains (`work_dirs/quickstart/tiny_clip.pt`).', '',
             '| variant | mIoU (13) | mIoU seen | mIoU unseen | hIoU |',
             '| --- | --- | --- | --- | --- |']
    for r in rows:
        lines.append(f'| {r["variant"]} | {f(r["mIoU"])} | {f(r["mIoU_seen"])} | '
                     f'{f(r["mIoU_unseen"])} | {f(r["hIoU"])} |')
    per = ', '.join(f'{k} {v["pairs"]} ({v["correct"]} right)' if k in spec.CLASSES
                    else f'{k} {v["pairs"]} (not a class: unscored)'
                    for k, v in sorted(mined['per_noun'].items()))
    lines += ['', f'Mined pairs: {mined["pairs"]} from {mined["images"]} captioned '
              f'images, {len(mined["nouns"])} nouns; purity (the mask\'s majority '
              f'ground-truth class is the noun, over nouns that are classes) '
              f'{mined["purity"] * 100:.1f}%. '
              f'Per noun: {per}.', '',
              'Adaptation: the tiny CLIP\'s image tower fine-tuned on the mined (masked '
              f'crop, noun) pairs, text tower frozen ({args.adapt_epochs} epochs, lr '
              f'{args.adapt_lr}, batch {args.adapt_batch}, recipe {args.recipe!r}, '
              + ('plain CLIP loss' if args.plain_clip_loss else
                 'CLIP loss with repeated nouns of a batch merged') + '). '
              'Mask prompt tuning does not apply to the ResNet tiny CLIP. The '
              'captions name unseen classes too (as COCO captions name ADE classes in '
              'the paper): no unseen masks or labels are used, but the adapted CLIP '
              'does see crops paired with unseen nouns; the last row removes those '
              'pairs.', '',
              'Times (1 thread): ' + ', '.join(
                  f'{k} {v:.0f}s' for k, v in timing.items() if v is not None) + '.', '']
    md = '\n'.join(lines)
    write_files(osp.join(args.results, 'ovseg_synthetic.md'), md,
                osp.join(args.results, 'ovseg_synthetic.json'), dict(
                    command=cmd, rows=rows, mining=mined, timing=timing,
                    lam=args.lam, proposal_iters=args.proposal_iters),
                indent=2, sort_keys=True)
    print('\n' + md, flush=True)


# ----------------------------------------------------------------------
# the proxy CLIP ViT (issue #25)

PROXY_CONFIG = osp.join(sp.ROOT, 'configs/ovseg/'
                        'ovseg_clip-synth-vit8_1xb4-400_synthetic-seen-128x128.py')
CLAIM = 'OVSeg ensemble with adapted CLIP > proposals alone'
ARM_BEST = 'ensemble, adapted CLIP (lambda=0.7)'
ARM_BASE = 'proposals alone (lambda=0)'


def main_proxy(args, argv):
    """OVSeg's ablation with the proxy CLIP as the method's CLIP, per seed:
    proposals (seeded) -> mining -> fine-tuning (seeded) -> mask prompt
    tuning (seeded) -> evaluation of the variants."""
    import copy

    from clipdense.datasets.synthetic import spec
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    t0 = time.perf_counter()
    if not osp.isfile(args.proxy_weights):
        raise FileNotFoundError(f'proxy CLIP weights {args.proxy_weights} not found: run '
                                '`make proxy-clip` (or pass --proxy-weights)')
    world = sp.step_world(args)
    tiny = sp.step_clip(args, world)
    clip = args.proxy_weights
    lam = args.lam
    per_seed = []
    for seed in args.seeds:
        a = copy.copy(args)
        a.proxy, a.seed, a.config = True, seed, PROXY_CONFIG
        a.backbone_weights, a.arch = tiny, 'clipdense-synth-vit8'
        a.work = osp.abspath(osp.join(args.proxy_work_dir, f'seed{seed}'))
        log(f'seed {seed}: proposals')
        ckpt, prop_secs, prop_loss = step_proposals(a, clip)
        mined = step_mine(a, clip, ckpt)
        mined = dict(mined, ann_file=osp.abspath(mined['ann_file']))
        ft, ft_secs, ft_loss = step_adapt(a, clip, mined, 'adapted_clip')
        prompts, mpt_secs, mpt_loss = step_prompts(a, ft, mined)
        os.makedirs(osp.join(a.work, 'eval'), exist_ok=True)
        ck_ft = merged_checkpoint(ckpt, ft, osp.join(a.work, 'eval', 'adapted_ft.pth'))
        ck_mpt = merged_checkpoint(ckpt, ft, osp.join(a.work, 'eval', 'adapted_ft_mpt.pth'),
                                   prompts=prompts)
        rows = {}
        for name, ck, weight, pr in [
                (ARM_BASE, ckpt, 0.0, None),
                ('vanilla CLIP on masked crops (lambda=1)', ckpt, 1.0, None),
                (f'ensemble, vanilla CLIP (lambda={lam})', ckpt, lam, None),
                ('adapted CLIP (FT + MPT) on masked crops (lambda=1)', ck_mpt, 1.0, prompts),
                (f'ensemble, CLIP fine-tuned only, no prompts (lambda={lam})', ck_ft, lam,
                 None),
                (f'ensemble, adapted CLIP (lambda={lam})', ck_mpt, lam, prompts)]:
            log(f'seed {seed}: evaluating {name}')
            m = evaluate(a, clip, ck, weight, pr)
            rows[name] = {k: m.get(k) for k in ('mIoU', 'mIoU_seen', 'mIoU_unseen', 'hIoU',
                                                'aAcc')}
            log(f'  {rows[name]}')
        per_seed.append(dict(seed=seed, rows=rows, mining={
            k: v for k, v in mined.items() if k != 'ann_file'}, timing=dict(
                proposal_train_seconds=prop_secs, finetune_seconds=ft_secs,
                prompt_tuning_seconds=mpt_secs),
            losses=dict(proposals=prop_loss, finetune=ft_loss, prompt_tuning=mpt_loss)))
    wall = time.perf_counter() - t0
    cmd = 'python tools/analysis_tools/bench_ovseg.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    return write_proxy_results(args, cmd.strip(), per_seed, wall, spec)


def _fmt(v):
    return '' if v is None else f'{v:.2f}'


def _loss_text(name, h):
    if not h:
        return f'{name}: no loss logged'
    means = ' -> '.join(f'{v:.3f}' for v in h['chunk_means'])
    drop = (h['chunk_means'][-2] - h['chunk_means'][-1]) / max(abs(h['chunk_means'][-2]),
                                                               1e-12) \
        if len(h['chunk_means']) > 1 else 0.0
    change = (f'fell {drop * 100:.0f}%' if drop >= 0 else f'rose {-drop * 100:.0f}%')
    return (f'{name} ({h["iters"]} logged steps, mean loss per quarter) {means}; '
            f'{change} in the last quarter')


def crop_diagnostic(args, seeds):
    """How well each CLIP classifies OVSeg-style masked crops of the
    ground-truth regions of the flat val images (one crop per class present
    in an image; the head's templates; the 13 classes): the CLIP branch's
    quality with perfect masks, apart from the proposals. Read for the
    diagnosis only (labels of val), nothing is chosen on it."""
    import glob

    import mmcv
    import torch

    from clipdense.datasets.synthetic import spec
    from clipdense.registry import MODELS
    cfg_t = base_cfg(argparse.Namespace(config=PROXY_CONFIG, data_root=args.data_root,
                                        proposal_iters=args.proposal_iters), None)
    templates = cfg_t.model.decode_head.text_encoder.templates
    imgs = sorted(glob.glob(osp.join(args.data_root, 'flat/img_dir/val/*.png')))
    if args.max_val:
        imgs = imgs[:args.max_val]
    samples = []
    for path in imgs:
        rgb = torch.from_numpy(mmcv.imread(path, channel_order='rgb').copy()).permute(
            2, 0, 1).float()
        gt = torch.from_numpy(mmcv.imread(path.replace('img_dir', 'ann_dir'),
                                          flag='unchanged').astype('int64'))
        for c in gt.unique().tolist():
            if c != 255:
                samples.append((rgb, gt == c, c))
    tiny = osp.join(args.work_dir, 'tiny_clip.pt')
    models = [('tiny CLIP ResNet (vanilla)', 'clipdense-synth-rn', tiny, None)]
    models.append(('proxy CLIP (vanilla)', 'clipdense-synth-vit8', args.proxy_weights, None))
    for seed in seeds:
        work = osp.abspath(osp.join(args.proxy_work_dir, f'seed{seed}'))
        models.append((f'proxy CLIP fine-tuned (seed {seed})', 'clipdense-synth-vit8',
                       osp.join(work, 'adapted_clip.pt'), None))
        models.append((f'proxy CLIP FT + MPT (seed {seed})', 'clipdense-synth-vit8',
                       osp.join(work, 'adapted_clip.pt'), osp.join(work, 'mask_prompts.pt')))
    out = {}
    unseen = {spec.CLASSES.index(c) for c in spec.UNSEEN_CLASSES}
    for name, arch, weights, prompts in models:
        if not osp.isfile(weights):
            continue
        text_w = tiny if arch == 'clipdense-synth-rn' else args.proxy_weights
        enc = MODELS.build(dict(type='OpenCLIPTextEncoder', arch=arch, pretrained=text_w,
                                templates=templates))
        clf = MODELS.build(dict(type='MaskedCropCLIP', arch=arch, pretrained=weights,
                                prompt_depth=args.prompt_depth if prompts else 0,
                                prompt_weights=prompts))
        enc.eval()
        clf.eval()
        hits, per = [], {}
        with torch.no_grad():
            text = torch.nn.functional.normalize(enc(list(spec.CLASSES)).float(), dim=-1)
            for rgb, m, c in samples:
                logits, valid = clf.classify(rgb, m[None], text)
                ok = bool(valid[0]) and int(logits[0].argmax()) == c
                hits.append(ok)
                per.setdefault(c, []).append(ok)
        acc = float(np.mean(hits)) * 100
        mean_cls = float(np.mean([np.mean(v) for v in per.values()])) * 100
        acc_unseen = float(np.mean([x for c, v in per.items() if c in unseen for x in v]
                                   or [0.0])) * 100
        out[name] = dict(crops=len(hits), accuracy=acc, mean_class_accuracy=mean_cls,
                         unseen_accuracy=acc_unseen)
        log(f'crop diagnostic: {name}: {out[name]}')
    cmd = ('python tools/analysis_tools/bench_ovseg.py --clip proxy --render-only '
           '--crop-diagnostic')
    return dict(command=cmd, results=out)


def write_proxy_results(args, cmd, per_seed, wall, spec, diag=None):
    seeds = [p['seed'] for p in per_seed]
    names = list(per_seed[0]['rows'])
    keys = ('mIoU', 'mIoU_seen', 'mIoU_unseen', 'hIoU')

    def stats(name, k):
        v = [p['rows'][name][k] for p in per_seed]
        return float(np.mean(v)), float(max(v) - min(v)), v
    lines = ['# OVSeg on the synthetic world with the proxy CLIP ViT (issue #25)', '',
             f'Command: `{cmd}`', '',
             'The method\'s CLIP is the proxy (`clipdense-synth-vit8`, '
             f'`{args.proxy_weights}`): its text tower names the MaskFormer classes and its '
             'image tower classifies the masked crops. The proposal backbone stays the frozen '
             'tiny CLIP ResNet (the paper\'s proposal backbone, Swin-B / R101c, is a network '
             'separate from its CLIP). Config '
             '`configs/ovseg/ovseg_clip-synth-vit8_1xb4-400_synthetic-seen-128x128.py`: the '
             'tiny-CLIP config\'s settings (seen / unseen split, templates, queries, losses, '
             f'{args.proposal_iters} iterations at batch 4, lambda {args.lam}), fixed before '
             'this run; nothing was chosen on these numbers. Per seed (the seed of proposal '
             'training, hence of mining, and of both adaptation steps): the proposal model '
             'on the 10 seen classes, (masked proposal, noun) pairs mined from the captions '
             'of the flat train images with the vanilla proxy, the proxy\'s image tower '
             f'fine-tuned on them (text frozen; {args.adapt_epochs} epochs, lr '
             f'{args.adapt_lr}, batch {args.adapt_batch}, recipe {args.recipe!r}), then mask '
             f'prompt tuning of depth {args.prompt_depth} on the fine-tuned CLIP with every '
             'CLIP weight frozen (the authors\' recipe: lr 0.05, wd 0, prompts from '
             'N(0, 0.02), same epochs and batch): the paper\'s "FT + MPT" adapted CLIP. '
             'Evaluated on the flat val images over all 13 classes; unseen = '
             f'{", ".join(spec.UNSEEN_CLASSES)}. mIoU in %, mean over seeds '
             f'{seeds} (spread = max - min).', '',
             '| variant | mIoU (13) | spread | mIoU seen | mIoU unseen | hIoU |',
             '| --- | --- | --- | --- | --- | --- |']
    for n in names:
        m, sp_, _ = stats(n, 'mIoU')
        lines.append(f'| {n} | {m:.2f} | {sp_:.2f} | {stats(n, "mIoU_seen")[0]:.2f} | '
                     f'{stats(n, "mIoU_unseen")[0]:.2f} | {stats(n, "hIoU")[0]:.2f} |')
    lines += ['', 'Per seed (mIoU / seen / unseen / hIoU):', '',
              '| seed | variant | mIoU (13) | mIoU seen | mIoU unseen | hIoU |',
              '| --- | --- | --- | --- | --- | --- |']
    for p in per_seed:
        for n in names:
            r = p['rows'][n]
            lines.append(f'| {p["seed"]} | {n} | ' + ' | '.join(_fmt(r[k]) for k in keys)
                         + ' |')
    best, base = stats(ARM_BEST, 'mIoU'), stats(ARM_BASE, 'mIoU')
    margin = best[0] - base[0]
    spread = max(best[1], base[1])
    shows = margin > 0 and margin > spread
    lines += ['', f'Claim "{CLAIM}": {ARM_BEST} {best[0]:.2f} vs {ARM_BASE} {base[0]:.2f} '
              f'mIoU, margin {margin:+.2f}, seed spread {spread:.2f}: '
              + ('shows (beyond the spread).' if shows else 'does not show beyond the spread.'),
              '']
    lines += ['Mining per seed: ' + '; '.join(
        f'seed {p["seed"]}: {p["mining"]["pairs"]} pairs from {p["mining"]["images"]} images, '
        f'purity {p["mining"]["purity"] * 100:.1f}%' for p in per_seed) + '.', '']
    sched = []
    for p in per_seed:
        for k, h in p['losses'].items():
            sched.append(f'seed {p["seed"]} ' + _loss_text(k, h))
    lines += ['Schedule and training losses:', ''] + [f'- {t}' for t in sched] + ['']
    lines += ['Times (1 thread): ' + '; '.join(
        f'seed {p["seed"]}: ' + ', '.join(f'{k} {v:.0f}s' for k, v in p['timing'].items()
                                          if v is not None) for p in per_seed)
        + f'; wall {wall:.0f}s.', '']
    if diag:
        lines += ['## Diagnostic: the CLIP branch on ground-truth masks', '',
                  f'Command: `{diag["command"]}`. Top-1 over the 13 classes of OVSeg\'s masked '
                  'crops of each ground-truth region of the val images (the head\'s templates), '
                  'i.e. the CLIP branch with perfect masks; val labels are read for this '
                  'diagnosis only.', '',
                  '| CLIP | crops | top-1 (%) | mean class accuracy (%) | unseen top-1 (%) |',
                  '| --- | --- | --- | --- | --- |']
        for n, r in diag['results'].items():
            lines.append(f'| {n} | {r["crops"]} | {r["accuracy"]:.1f} | '
                         f'{r["mean_class_accuracy"]:.1f} | {r["unseen_accuracy"]:.1f} |')
        lines.append('')
    if args.note:
        lines += ['## Why', '', args.note, '']
    md = '\n'.join(lines)
    schedule = '; '.join(sched)
    ablation = dict(
        claim=CLAIM,
        metrics=[dict(name='mIoU, 13 classes, flat val (%)', higher_is_better=True,
                      order=[ARM_BEST, ARM_BASE],
                      arms={ARM_BEST: best[2], ARM_BASE: base[2]}),
                 ],
        seeds=seeds,
        schedule=(f'proposals {args.proposal_iters} iterations, fine-tuning and mask prompt '
                  f'tuning {args.adapt_epochs} epochs each, per seed; ' + schedule),
        note=args.note or '')
    means = {n: stats(n, 'mIoU')[0] for n in names}
    data = dict(command=cmd, per_seed=per_seed, wall_seconds=wall, lam=args.lam,
                proposal_iters=args.proposal_iters, means=means, ablation=ablation,
                crop_diagnostic=diag)
    write_files(osp.join(args.results, 'ovseg_proxy.md'), md,
                osp.join(args.results, 'ovseg_proxy.json'), data, indent=2, sort_keys=True)
    print('\n' + md, flush=True)
    return data


if __name__ == '__main__':
    main()
