"""AffordanceCLIP on the synthetic world: train the head on referring
expressions only, evaluate zero-shot on the AGD20K-style test tree.

    python tools/analysis_tools/bench_affordance.py [--iters N]
    python tools/analysis_tools/bench_affordance.py --clip proxy [--seeds 0 1 2]

Steps (the world and the tiny CLIP come from the quickstart caches,
``clipdense.apis.synthetic_pipeline``; nothing is regenerated):

1. train the synthetic AffordanceCLIP config (``configs/affordanceclip/``;
   frozen tiny CLIP towers, only the head learns) on the world's referring
   expressions ("the handle of the red mug", no action word);
2. check the head on the held-out referring expressions (mask IoU);
3. evaluate on the AGD-style Seen tree with action prompts ("hold", "drink
   with", ...), KLD / SIM / NSS under the AGD20K protocol, for the trained
   head and for the untrained frozen-CLIP similarity maps (DenseCLIP-style
   attention-pooled pixels, MaskCLIP value path); also with the action
   worded as the world's captions word it ("holding", zero-shot too) and,
   as a reference that is not zero-shot, with the name of the afforded part
   as the prompt (the world's action-to-part table: an oracle prompt).

Writes ``results/affordance_synthetic.md`` and ``.json`` with the command
on top.

``--clip proxy`` (issue #25) runs the same ablation with the proxy CLIP ViT
(``clipdense-synth-vit8``, ``work_dirs/proxy/proxy_clip.pt`` from ``make
proxy-clip``; config ``affordanceclip_clip-synth-vit8_...``): the head is
trained once per seed (``--seeds``, default 0 1 2), the untrained
frozen-CLIP rows are deterministic and run once; the per-seed rows, the
training-loss schedule and the ``ablation`` summary (claim "trained
affordance head > frozen CLIP", KLD / SIM / NSS) go to
``results/affordance_proxy.md`` and ``.json``. At one thread the default schedule (1000 iterations, the frozen
tower's outputs cached) trained in about 75 s of CPU time (5 min wall on a
shared 2-core machine); evaluation takes seconds.
"""
import argparse
import os
import os.path as osp
import sys
import time

from clipdense.engine.bench_harness import build_runner, command_line, make_log, repo_root
from clipdense.engine.bench_harness import write_results as write_files
ROOT = repo_root(__file__)
CONFIG = osp.join(ROOT, 'configs/affordanceclip/'
                  'affordanceclip_clip-synth-rn_1xb16-1k_synthetic-refer-128x128.py')
PROXY_CONFIG = osp.join(ROOT, 'configs/affordanceclip/'
                        'affordanceclip_clip-synth-vit8_1xb16-1k_synthetic-refer-128x128.py')
CLAIM = 'trained affordance head > frozen CLIP'
HEAD_ARM = 'trained head, action prompt (zero-shot)'
FROZEN_ARM = 'frozen CLIP dense'


log = make_log('bench_affordance')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', default='data/synthetic')
    p.add_argument('--clip-work-dir', default='work_dirs/quickstart',
                   help='where the quickstart keeps the tiny CLIP')
    p.add_argument('--clip', choices=('tiny', 'proxy'), default='tiny',
                   help="'tiny': the quickstart's tiny CLIP ResNet; 'proxy': the "
                   'proxy CLIP ViT of issue #25 (make proxy-clip)')
    p.add_argument('--proxy-weights', default='work_dirs/proxy/proxy_clip.pt')
    p.add_argument('--work-dir', default=None,
                   help='default work_dirs/affordanceclip/bench (tiny), '
                   'work_dirs/affordance_proxy (proxy)')
    p.add_argument('--iters', type=int, default=None,
                   help="training iterations (default: the config's)")
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the tiny-CLIP run (the world and the head)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                   help='head training seeds of the proxy run')
    p.add_argument('--out', default=None,
                   help='output path without extension (.md and .json); default '
                   'results/affordance_synthetic (tiny), results/affordance_proxy '
                   '(proxy)')
    p.add_argument('--note', default=None,
                   help='proxy run: the "note" of the ablation summary (default: '
                   'written from the numbers)')
    p.add_argument('--analysis', default=None,
                   help='proxy run: a markdown file whose text is added to the '
                   'results file (the analysis of the numbers)')
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    proxy = args.clip == 'proxy'
    if args.analysis is not None and not osp.isfile(args.analysis):
        p.error(f'--analysis {args.analysis}: no such file')
    if args.analysis is not None:
        args.analysis = osp.abspath(args.analysis)
    if args.work_dir is None:
        args.work_dir = 'work_dirs/affordance_proxy' if proxy \
            else 'work_dirs/affordanceclip/bench'
    if args.out is None:
        args.out = 'results/affordance_proxy' if proxy else 'results/affordance_synthetic'
    if args.iters is not None and args.iters < 1:
        p.error(f'--iters must be >= 1, got {args.iters}')
    if proxy and len(set(args.seeds)) != len(args.seeds):
        p.error(f'--seeds has repeats: {args.seeds}')
    return args


def build_cfg(args, weights, config=CONFIG):
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.model.backbone.pretrained = weights
    cfg.model.text_encoder.pretrained = weights
    cfg.train_dataloader.dataset.data_root = osp.join(args.data_root, 'refer')
    cfg.test_dataloader.dataset.data_root = osp.join(args.data_root, 'agd20k')
    cfg.work_dir = args.work_dir
    cfg.randomness = dict(seed=args.seed)
    if args.iters is not None:
        from clipdense.apis.synthetic_pipeline import shorten_schedule
        shorten_schedule(cfg, args.iters)
    cfg.experiment_name = f'bench_affordance_{int(time.time())}'
    return cfg


def evaluate_agd(model, loader, source, prompt_fn=None):
    """AGD20K metrics of one heat-map source over the test tree."""
    import torch

    from clipdense.evaluation import AffordanceMetric
    metric = AffordanceMetric(per_action=True)
    metric.dataset_meta = loader.dataset.metainfo
    model.test_cfg['heatmap'] = source
    with torch.no_grad():
        for batch in loader:
            if prompt_fn is not None:
                for ds in batch['data_samples']:
                    ds.set_metainfo({'text': prompt_fn(ds.metainfo)})
            out = model.test_step(batch)
            metric.process(batch, [o.to_dict() for o in out])
    model.test_cfg['heatmap'] = 'head'
    return metric.compute_metrics(metric.results)


def evaluate_refer(model, cfg, data_root):
    """Mean mask IoU of the head on the held-out referring expressions
    (sigmoid > 0.5), overall and for objects / parts."""
    import numpy as np
    import torch
    from mmengine.dataset import pseudo_collate

    from clipdense.registry import DATASETS
    ds_cfg = cfg.train_dataloader.dataset.copy()
    # one sample per held-out ref (its first expression)
    ds_cfg.update(split='val', data_root=osp.join(data_root, 'refer'),
                  per_sentence=False)
    ds = DATASETS.build(ds_cfg)
    ious = {'object': [], 'part': []}
    # referring expressions are prompts as written (no action templates)
    templates, model.prompt_templates = model.prompt_templates, ('{}', )
    with torch.no_grad():
        for start in range(0, len(ds), 16):
            items = [ds[i] for i in range(start, min(len(ds), start + 16))]
            batch = pseudo_collate(items)
            masks = [b['data_samples'].gt_sem_seg.data[0].numpy() for b in items]
            out = model.test_step(batch)
            for i, o in enumerate(out):
                pred = o.pred_heatmap.data[0].numpy() > 0.5
                gt = masks[i] == 1
                union = (pred | gt).sum()
                iou = (pred & gt).sum() / union if union else 1.0
                kind = ds.get_data_info(start + i)['kind']
                ious[kind].append(float(iou))
    model.prompt_templates = templates
    res = {k: float(np.mean(v)) for k, v in ious.items() if v}
    res['all'] = float(np.mean(ious['object'] + ious['part']))
    res['n'] = {k: len(v) for k, v in ious.items()}
    return res


def prompt_rows(frozen_dense_name):
    """The heat maps of the table: (name, source, prompt function,
    templates); ``None`` keeps the action prompt / the model's templates."""
    from clipdense.datasets.synthetic import spec

    def part_prompt(meta):
        # oracle: the name of the part that affords the action on this object
        return 'the ' + spec.ACTIONS[meta['action']][meta['object']]

    def gerund_prompt(meta):
        # the world's captions say "a handle for holding": its tiny CLIP
        # has seen the gerunds, never "hold" or "drink with"
        return spec.ACTION_GERUNDS[meta['action']]

    actions = sorted(spec.ACTIONS)

    def wrong_prompt(meta):
        # control: the next action of the world's (sorted) list instead of the
        # image's own; if the maps follow the text, this must score worse
        a = actions[(actions.index(meta['action']) + 1) % len(actions)]
        return a.replace('_', ' ')

    caption_style = ('a part for {}', 'with a part for {}', 'for {}')
    rows = [
        (HEAD_ARM, 'head', None, None),
        (frozen_dense_name, 'clip_dense', None, None),
        ('frozen CLIP, value-path similarity (untrained)', 'clip_value', None, None),
        ('trained head, another action\'s prompt (control)', 'head', wrong_prompt, None),
        ('trained head, gerund in caption-style templates (zero-shot)', 'head',
         gerund_prompt, caption_style),
        ('frozen CLIP dense, gerund in caption-style templates (untrained)',
         'clip_dense', gerund_prompt, caption_style),
        ('trained head, part-name prompt (oracle, not zero-shot)', 'head',
         part_prompt, ('{}', )),
        ('frozen CLIP dense, part-name prompt (oracle, not zero-shot)', 'clip_dense',
         part_prompt, ('{}', )),
    ]
    return rows, part_prompt


def run_rows(model, loader, rows, part_prompt):
    results = []
    default_templates = model.prompt_templates
    for name, source, fn, templates in rows:
        t0 = time.perf_counter()
        model.prompt_templates = templates or default_templates
        m = evaluate_agd(model, loader, source, fn)
        model.prompt_templates = default_templates
        results.append(dict(name=name, source=source, oracle=fn is part_prompt,
                            templates=list(templates or default_templates), **m))
        log(f"{name}: KLD {m['KLD']:.3f} SIM {m['SIM']:.3f} NSS {m['NSS']:.3f} "
            f'({time.perf_counter() - t0:.0f}s)')
    return results


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    if args.clip == 'proxy':
        return main_proxy(args)
    import torch

    import clipdense.apis.synthetic_pipeline as sp
    from clipdense.utils import register_all_modules
    register_all_modules()
    t_start = time.perf_counter()
    ns = argparse.Namespace(data_root=args.data_root, work_dir=args.clip_work_dir,
                            seed=args.seed, fresh=False, tiny=False)
    world = sp.step_world(ns)
    weights = sp.step_clip(ns, world)
    log(f'tiny CLIP: {weights}; torch threads: {torch.get_num_threads()}')

    from mmengine.runner import Runner
    cfg = build_cfg(args, weights)
    runner = build_runner(cfg)
    model = runner.model
    n_head = sum(p.numel() for p in model.decode_head.parameters())
    n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    t0, c0 = time.perf_counter(), time.process_time()
    runner.train()
    train_s = time.perf_counter() - t0
    train_cpu_s = time.process_time() - c0
    n_train = len(runner.train_dataloader.dataset)
    log(f'trained {cfg.train_cfg.max_iters} iterations in {train_s:.0f}s wall, '
        f'{train_cpu_s:.0f}s CPU ({n_train} referring expressions)')
    model.eval()

    refer = evaluate_refer(model, cfg, args.data_root)
    log(f'held-out referring expressions: mask IoU {refer}')

    loader = Runner.build_dataloader(cfg.test_dataloader)
    rows, part_prompt = prompt_rows(
        'frozen CLIP, dense attention-pool similarity (untrained)')
    results = run_rows(model, loader, rows, part_prompt)
    total_s = time.perf_counter() - t_start
    write_results(args, cfg, results, refer, dict(
        train_seconds=round(train_s, 1), train_cpu_seconds=round(train_cpu_s, 1),
        total_seconds=round(total_s, 1),
        iters=cfg.train_cfg.max_iters,
        batch_size=cfg.train_dataloader.batch_size,
        train_expressions=n_train, test_images=len(loader.dataset),
        head_parameters=n_head, frozen_parameters=n_frozen,
        torch_threads=torch.get_num_threads(), clip_weights=weights,
        prompt_templates=list(model.prompt_templates)))
    return 0


def text_diagnostic(model, cfg, data_root):
    """What the frozen text tower offers the head (item 3 of issue #25).

    * ``nearest_cos``: cosine of each action prompt (the model's prompt
      templates) to its nearest training referring expression, against the
      same for the held-out expressions not in the training set: how far
      the zero-shot prompts lie from the text the head was trained on;
    * ``action_to_part``: for every (action, object) pair of the world
      whose object has several parts, whether the action prompt is closer
      to the afforded part ("the handle of the mug", and "the handle") than
      to the object's other parts; ``chance`` is the expected count when
      picking a part at random.
    """
    from clipdense.datasets.synthetic import spec
    from clipdense.registry import DATASETS

    def texts(split):
        ds_cfg = cfg.train_dataloader.dataset.copy()
        ds_cfg.update(split=split, data_root=osp.join(data_root, 'refer'))
        ds = DATASETS.build(ds_cfg)
        return {ds.get_data_info(i)['text'] for i in range(len(ds))}

    train = sorted(texts('train'))
    val = sorted(texts('val') - set(train))
    actions = sorted(spec.ACTIONS)
    import torch
    with torch.no_grad():
        e_train = model.encode_sentences(train)
        e_val = model.encode_sentences(val)
        e_act = model.encode_prompts([a.replace('_', ' ') for a in actions])
        nn_val = (e_val @ e_train.T).max(1).values
        nn_act = (e_act @ e_train.T).max(1).values
        hits = {'the P of the O': 0, 'the P': 0}
        pairs, chance = 0, 0.0
        for a, per in spec.ACTIONS.items():
            for obj, part in per.items():
                parts = spec.OBJECT_PARTS[obj]
                if len(parts) < 2:
                    continue
                pairs += 1
                chance += 1 / len(parts)
                ea = e_act[actions.index(a)]
                for key, fmt in (('the P of the O', 'the {p} of the {o}'),
                                 ('the P', 'the {p}')):
                    ep = model.encode_sentences([fmt.format(p=p, o=obj) for p in parts])
                    hits[key] += int(parts[int((ep @ ea).argmax())] == part)
    return dict(
        train_expressions=len(train), unseen_val_expressions=len(val),
        nearest_cos=dict(
            val_expressions_mean=float(nn_val.mean()),
            val_expressions_min=float(nn_val.min()),
            action_prompts_mean=float(nn_act.mean()),
            action_prompts={a: float(v) for a, v in zip(actions, nn_act)}),
        action_to_part=dict(pairs=pairs, chance=round(chance, 2), **hits))


def loss_schedule(runner, window=100):
    """The training loss of a finished run, mean per ``window`` iterations
    (from the message hub's history of every iteration)."""
    import numpy as np
    hist = runner.message_hub.get_scalar('train/loss').data[0]
    hist = np.asarray(hist, dtype=float)
    means = [float(hist[i:i + window].mean()) for i in range(0, len(hist), window)]
    return dict(window=window, iters=len(hist), window_means=means,
                first=float(hist[:window].mean()), last=float(hist[-window:].mean()))


def main_proxy(args):
    """The ablation on the proxy CLIP ViT: the head trained per seed, the
    frozen-CLIP rows once."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    from clipdense.utils import register_all_modules
    register_all_modules()
    t_start = time.perf_counter()
    weights = args.proxy_weights
    if not osp.isfile(weights):
        raise FileNotFoundError(f'no proxy CLIP at {weights}: build it with '
                                '`make proxy-clip` (or give --proxy-weights)')
    for sub in ('refer', 'agd20k'):
        if not osp.isdir(osp.join(args.data_root, sub)):
            raise FileNotFoundError(f'{osp.join(args.data_root, sub)} is missing: '
                                    'build the synthetic world with `make quickstart`')
    log(f'proxy CLIP: {weights}; torch threads: {torch.get_num_threads()}')
    rows, part_prompt = prompt_rows(
        'frozen CLIP dense, per-token similarity (untrained)')
    head_rows = [r for r in rows if r[1] == 'head']
    frozen_rows = [r for r in rows if r[1] != 'head']
    root_work_dir = args.work_dir
    runs, frozen, info = [], None, {}
    for seed in args.seeds:
        args.seed, args.work_dir = seed, osp.join(root_work_dir, f'seed{seed}')
        cfg = build_cfg(args, weights, PROXY_CONFIG)
        runner = build_runner(cfg)
        model = runner.model
        t0, c0 = time.perf_counter(), time.process_time()
        runner.train()
        train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        sched = loss_schedule(runner)
        log(f'seed {seed}: {cfg.train_cfg.max_iters} iterations in {train_s:.0f}s '
            f"wall, {train_cpu_s:.0f}s CPU; loss {sched['first']:.3f} (first "
            f"{sched['window']}) -> {sched['last']:.3f} (last {sched['window']})")
        model.eval()
        refer = evaluate_refer(model, cfg, args.data_root)
        log(f'seed {seed}: held-out referring expressions: mask IoU {refer}')
        loader = Runner.build_dataloader(cfg.test_dataloader)
        res = run_rows(model, loader, head_rows, part_prompt)
        if frozen is None:  # no trained part: the same for every seed
            frozen = run_rows(model, loader, frozen_rows, part_prompt)
            text_diag = text_diagnostic(model, cfg, args.data_root)
            log(f'text tower: {text_diag}')
            info = dict(
                iters=cfg.train_cfg.max_iters,
                config_iters=Config.fromfile(PROXY_CONFIG).train_cfg.max_iters,
                batch_size=cfg.train_dataloader.batch_size,
                train_expressions=len(runner.train_dataloader.dataset),
                test_images=len(loader.dataset),
                head_parameters=sum(p.numel() for p in model.decode_head.parameters()),
                frozen_parameters=sum(p.numel() for p in model.parameters()
                                      if not p.requires_grad),
                torch_threads=torch.get_num_threads(), clip_weights=weights,
                prompt_templates=list(model.prompt_templates))
        runs.append(dict(seed=seed, train_seconds=round(train_s, 1),
                         train_cpu_seconds=round(train_cpu_s, 1), loss=sched,
                         referring_val_iou=refer, rows=res))
    info['total_seconds'] = round(time.perf_counter() - t_start, 1)
    info['text_diagnostic'] = text_diag
    write_proxy_results(args, runs, frozen, info)
    return 0


def _mean(vals):
    return sum(vals) / len(vals)


def proxy_summary(runs, frozen, info):
    """The issue-#25 ``ablation`` summary: per metric the head's per-seed
    values against the deterministic frozen-CLIP dense map."""
    head = [next(r for r in run['rows'] if r['name'] == HEAD_ARM) for run in runs]
    base = frozen[0]
    metrics = []
    for key, hib in (('KLD', False), ('SIM', True), ('NSS', True)):
        metrics.append(dict(
            name=f'{key} on the AGD20K-style Seen tree '
                 f"({'higher' if hib else 'lower'} is better)",
            higher_is_better=hib, order=[HEAD_ARM, FROZEN_ARM],
            arms={HEAD_ARM: [float(h[key]) for h in head],
                  FROZEN_ARM: [float(base[key])]},
            deterministic=[FROZEN_ARM]))
    losses = [run['loss'] for run in runs]
    w = losses[0]['window']
    schedule = (
        f"{info['iters']} iterations at batch {info['batch_size']} (config: "
        f"{info['config_iters']}, the tiny-CLIP recipe); training loss (BCE + "
        f'dice), means over windows of {w} iterations, first / second-to-last / '
        'last window per seed: ' + '; '.join(
            f"seed {run['seed']} " + ' / '.join(
                f'{x:.3f}' for x in ls['window_means'][:1] + ls['window_means'][-2:])
            for run, ls in zip(runs, losses)))
    return dict(claim=CLAIM, metrics=metrics, seeds=[run['seed'] for run in runs],
                schedule=schedule, note='')


def claim_verdict(summary):
    """Per metric: the head's mean, the frozen value, the margin (in the
    claim's favour when positive), the seed spread, and whether every seed
    is on the claimed side."""
    out = []
    for m in summary['metrics']:
        h = m['arms'][HEAD_ARM]
        f = m['arms'][FROZEN_ARM][0]
        sign = 1 if m['higher_is_better'] else -1
        margin = sign * (_mean(h) - f)
        spread = max(h) - min(h)
        out.append(dict(metric=m['name'].split(' ')[0], head=_mean(h), frozen=f,
                        margin=margin, spread=spread,
                        every_seed=all(sign * (v - f) > 0 for v in h),
                        beyond_2x_spread=margin > 2 * spread))
    return out


def auto_note(runs, verdict, info):
    """The summary's note, from the numbers: direction per metric, which
    margins are beyond twice the seed spread, whether the maps follow the
    action (the control row) and what the text tower relates."""
    def row_mean(name, key):
        return _mean([next(r for r in run['rows'] if r['name'] == name)[key]
                      for run in runs])

    every = [v['metric'] for v in verdict if v['every_seed']]
    beyond = [v['metric'] for v in verdict if v['beyond_2x_spread']]
    within = [v for v in verdict if v['every_seed'] and not v['beyond_2x_spread']]
    parts = []
    if len(every) == len(verdict):
        parts.append('Reproduced in direction on every seed for '
                     + ', '.join(every))
    else:
        parts.append('Not reproduced on every seed for ' + ', '.join(
            f"{v['metric']} (margin {v['margin']:+.3f})" for v in verdict
            if not v['every_seed']))
    if within:
        parts[-1] += ('; beyond twice the seed spread only for '
                      + (', '.join(beyond) if beyond else 'none') + ' ('
                      + ', '.join(f"{v['metric']} {v['margin']:+.3f} vs spread "
                                  f"{v['spread']:.3f}" for v in within) + ')')
    ctrl = 'trained head, another action\'s prompt (control)'
    sim_h, sim_c = row_mean(HEAD_ARM, 'SIM'), row_mean(ctrl, 'SIM')
    follows = sim_c < sim_h
    text = (f'. The head\'s maps {"do" if follows else "do not"} follow the action '
            f'(SIM with another action\'s prompt {sim_c:.3f} vs {sim_h:.3f})')
    td = info.get('text_diagnostic')
    if td:
        ap = td['action_to_part']
        text += (f"; the proxy's text tower puts the afforded part nearest the action "
                 f"prompt in {ap['the P of the O']} of {ap['pairs']} (action, object) "
                 f"pairs (chance {ap['chance']:.1f})")
    return parts[0] + text + '.'


def write_proxy_results(args, runs, frozen, info):
    cmd = command_line('bench_affordance.py', args.argv,
                       threads_env=('OMP_NUM_THREADS', 'MKL_NUM_THREADS'))
    summary = proxy_summary(runs, frozen, info)
    verdict = claim_verdict(summary)
    ok = all(v['every_seed'] for v in verdict)
    summary['note'] = args.note if getattr(args, 'note', None) else auto_note(
        runs, verdict, info)
    seeds = [run['seed'] for run in runs]
    lines = [
        '# AffordanceCLIP on the synthetic world, proxy CLIP ViT (issue #25)', '',
        f'Command: `{cmd}`', '',
        f"Config: `{osp.relpath(PROXY_CONFIG, ROOT)}` (the tiny-CLIP config's recipe "
        'with the proxy CLIP ViT `clipdense-synth-vit8`, '
        f"`{info['clip_weights']}`, in both towers; levels: the tokens after blocks "
        f"1-3, all 16x16), {info['iters']} iterations of batch {info['batch_size']} "
        f"on {info['train_expressions']} referring expressions (objects and parts, no "
        f"action words), head seeds {seeds}, at {info['torch_threads']} thread(s); "
        f"{info['head_parameters']:,} trained head parameters, "
        f"{info['frozen_parameters']:,} frozen CLIP parameters; "
        f"{info['total_seconds']:.0f} s wall in all. Test: the AGD20K-style Seen "
        f"tree, {info['test_images']} egocentric images, one action prompt each, "
        'AGD20K protocol (KLD lower is better, SIM and NSS higher). Action prompt '
        'templates: ' + ', '.join(f'`{t}`' for t in info['prompt_templates']) + '.',
        '', '## The claim: trained head vs frozen CLIP dense map', '',
        f'"{CLAIM}": the trained head with the action prompt against the untrained '
        'per-token similarity of the frozen CLIP (`clip_dense`: each token through '
        "the tower's final norm and projection, DenseCLIP's dense ViT output; "
        "deterministic, one run). Margin: in the claim's favour when positive; "
        'spread: max - min over the head seeds.', '',
        '| metric | trained head (mean) | per seed | frozen CLIP dense | margin | '
        'seed spread | every seed | beyond 2x spread |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for m, v in zip(summary['metrics'], verdict):
        lines.append(
            f"| {v['metric']} | {v['head']:.3f} | "
            + ', '.join(f'{x:.3f}' for x in m['arms'][HEAD_ARM])
            + f" | {v['frozen']:.3f} | {v['margin']:+.3f} | {v['spread']:.3f} | "
            f"{'yes' if v['every_seed'] else 'no'} | "
            f"{'yes' if v['beyond_2x_spread'] else 'no'} |")
    lines += ['', '## Every heat map', '',
              'Head rows: one per seed; frozen rows: deterministic (one run).', '',
              '| heat map | seed | KLD | SIM | NSS |', '| --- | --- | --- | --- | --- |']
    for name in [r['name'] for r in runs[0]['rows']] + [r['name'] for r in frozen]:
        for run in runs:
            for r in run['rows']:
                if r['name'] == name:
                    lines.append(f"| {name} | {run['seed']} | {r['KLD']:.3f} | "
                                 f"{r['SIM']:.3f} | {r['NSS']:.3f} |")
        for r in frozen:
            if r['name'] == name:
                lines.append(f"| {name} | - | {r['KLD']:.3f} | {r['SIM']:.3f} | "
                             f"{r['NSS']:.3f} |")
    actions = sorted({k.split('/', 1)[1] for k in frozen[0] if k.startswith('KLD/')})
    lines += ['', 'Per action (trained head mean over seeds / frozen CLIP dense):', '',
              '| action | KLD | SIM | NSS |', '| --- | --- | --- | --- |']
    head = [next(r for r in run['rows'] if r['name'] == HEAD_ARM) for run in runs]
    for a in actions:
        lines.append(f'| {a} | ' + ' | '.join(
            f"{_mean([h[f'{k}/{a}'] for h in head]):.3f} / {frozen[0][f'{k}/{a}']:.3f}"
            for k in ('KLD', 'SIM', 'NSS')) + ' |')
    lines += ['', '## Schedule', '',
              'Training loss (BCE + dice) of the head, mean per '
              f"{runs[0]['loss']['window']} iterations:", '',
              '| seed | ' + ' | '.join(
                  f"{i * runs[0]['loss']['window'] + 1}-"
                  f"{min((i + 1) * runs[0]['loss']['window'], runs[0]['loss']['iters'])}"
                  for i in range(len(runs[0]['loss']['window_means'])))
              + ' | train wall (CPU) s | held-out referring mask IoU (objects / parts) |',
              '| --- |' + ' --- |' * (len(runs[0]['loss']['window_means']) + 2)]
    for run in runs:
        rf = run['referring_val_iou']
        lines.append(f"| {run['seed']} | " + ' | '.join(
            f'{x:.3f}' for x in run['loss']['window_means'])
            + f" | {run['train_seconds']:.0f} ({run['train_cpu_seconds']:.0f}) | "
            f"{rf['all']:.3f} ({rf.get('object', float('nan')):.3f} / "
            f"{rf.get('part', float('nan')):.3f}) |")
    td = info['text_diagnostic']
    nc, ap = td['nearest_cos'], td['action_to_part']
    lines += ['', '## What the frozen text tower offers the head', '',
              'Cosine of each action prompt (the templates above, ensembled) to its '
              f"nearest training referring expression ({td['train_expressions']} "
              f"distinct): mean {nc['action_prompts_mean']:.3f} ("
              + ', '.join(f'{a} {v:.3f}' for a, v in nc['action_prompts'].items())
              + f"); the {td['unseen_val_expressions']} held-out expressions not in "
              f"the training set: mean {nc['val_expressions_mean']:.3f}, min "
              f"{nc['val_expressions_min']:.3f}. Action prompt closer to the afforded "
              "part than to the object's other parts, over the "
              f"{ap['pairs']} (action, object) pairs whose object has several parts: "
              f"{ap['the P of the O']} with \"the P of the O\", {ap['the P']} with "
              f"\"the P\" (chance {ap['chance']:.1f}).", '']
    lines += ['', f"Schedule summary: {summary['schedule']}.", '',
              f"Note: {summary['note']}", '']
    if getattr(args, 'analysis', None):
        with open(args.analysis) as f:
            lines += [f.read().strip(), '']
    lines += ['Rows: as in `results/affordance_synthetic.md` (gerund rows: the action '
              'as the tiny world\'s captions phrase it; oracle rows: the afforded '
              'part\'s name, not zero-shot; control: the next action of the sorted '
              'list for each image). Nothing was tuned on these numbers: the config is '
              'the tiny-CLIP recipe with the backbone swapped, chosen before any '
              'result.', '']
    out = args.out
    write_files(out + '.md', '\n'.join(lines), out + '.json', dict(
        command=cmd, config=osp.relpath(PROXY_CONFIG, ROOT), info=info,
        ablation=summary, verdict=verdict, runs=runs, frozen=frozen), indent=2)
    print('\n'.join(lines))
    log(f'wrote {out}.md and {out}.json')


def write_results(args, cfg, results, refer, info):
    cmd = 'python ' + ' '.join([osp.relpath(osp.abspath(sys.argv[0]), ROOT)] +
                               sys.argv[1:])
    actions = sorted({k.split('/', 1)[1] for k in results[0] if k.startswith('KLD/')})
    lines = [
        '# AffordanceCLIP on the synthetic world', '',
        f'Command: `OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 {cmd}`', '',
        f"Config: `{osp.relpath(CONFIG, ROOT)}`, {info['iters']} iterations of batch "
        f"{info['batch_size']} on {info['train_expressions']} referring expressions "
        f"(objects and parts, no action words) in {info['train_seconds']:.0f} s wall "
        f"({info['train_cpu_seconds']:.0f} s of CPU time) at "
        f"{info['torch_threads']} thread(s); {info['head_parameters']:,} trained head "
        f"parameters, {info['frozen_parameters']:,} frozen CLIP parameters. Test: the "
        f"AGD20K-style Seen tree, {info['test_images']} egocentric images, one "
        'action prompt each, AGD20K protocol (KLD lower is better, SIM and NSS '
        'higher). Action prompt templates: '
        + ', '.join(f'`{t}`' for t in info['prompt_templates']) + '.', '',
        '| heat map | KLD | SIM | NSS |', '| --- | --- | --- | --- |']
    for r in results:
        lines.append(f"| {r['name']} | {r['KLD']:.3f} | {r['SIM']:.3f} | {r['NSS']:.3f} |")
    lines += ['', 'Per action (trained head, zero-shot / frozen CLIP dense, untrained):', '',
              '| action | KLD | SIM | NSS |', '| --- | --- | --- | --- |']
    head, base = results[0], results[1]
    for a in actions:
        lines.append(f'| {a} | ' + ' | '.join(
            f"{head[f'{k}/{a}']:.3f} / {base[f'{k}/{a}']:.3f}" for k in ('KLD', 'SIM', 'NSS'))
            + ' |')
    lines += ['', f"Held-out referring expressions (sanity check of the head; mask IoU of "
              f"sigmoid > 0.5): all {refer['all']:.3f}, objects "
              f"{refer.get('object', float('nan')):.3f}, parts "
              f"{refer.get('part', float('nan')):.3f} (n = {refer['n']}).", '',
              'Rows with "gerund" give the action as the world\'s captions phrase it '
              '("holding", "drinking"; templates `a part for {}`, `with a part for {}`, '
              '`for {}`): still zero-shot (no affordance label), only the wording of the '
              'action changes. Oracle rows replace the action by the name of the part '
              "that affords it (the world's action-to-part table, template `{}`): they "
              'use affordance knowledge and are not zero-shot; they show what perfect '
              'action-to-part text transfer could reach. The control row prompts each '
              'image with the next action of the sorted list (hold -> kick, cut -> '
              'drink with, ...): a head whose maps follow the action text scores worse '
              'there than with the right action.', '']
    out = args.out
    write_files(out + '.md', '\n'.join(lines), out + '.json', dict(
        command=cmd, config=osp.relpath(CONFIG, ROOT), info=info,
        referring_val_iou=refer, agd=results), indent=2)
    print('\n'.join(lines))
    log(f'wrote {out}.md and {out}.json')


if __name__ == '__main__':
    sys.exit(main())
