"""Measure the speed targets of issue 13 in one run and write one report.

    python tools/analysis_tools/speed_report.py [--out results/speed.md]
        [--device cpu] [--quick] [--only NAME ...]

Every figure is a ratio measured in this run (model vs. a same-precision
matmul, bf16 vs. fp32, batched vs. one-window slide, clipdense vs. mmseg's
SAN, 1000 vs. 20 classes), so it holds on a noisy machine; absolute times are
printed next to it. Speed runs use random weights (``--random-weights``
semantics: speed does not depend on them). The bf16 pixel agreement uses the
trained tiny CLIP on the synthetic world (``make quickstart`` writes it) when
present, since agreement of random weights says nothing.

``--quick`` shrinks every shape and repeat count (a smoke test of the script).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MASKCLIP_VIT = osp.join(ROOT, 'configs/maskclip/'
                        'maskclip_vit-b16-openai_voc12-20cls-512x512.py')
MASKCLIP_SYNTH = osp.join(ROOT, 'configs/maskclip/'
                          'maskclip_clip-synth-rn_synthetic-128x128.py')
DENSECLIP_VIT = osp.join(ROOT, 'configs/denseclip/'
                         'denseclip_vit-b16-openai_8xb4-80k_ade20k-640x640.py')


def mmseg_config(rel):
    """Path of a config shipped inside the installed mmseg package."""
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', rel)


SAN_VIT = 'san/san-vit-b16_coco-stuff164k-640x640.py'  # in mmseg's package
TINY_CLIP = osp.join(ROOT, 'work_dirs', 'quickstart', 'tiny_clip.pt')
SYNTH_ROOT = osp.join(ROOT, 'data', 'synthetic')


def log(msg):
    print(f'[speed] {msg}', flush=True)


def bench(config, name, args, *, shape, precision='fp32', slide_batch=None,
          cfg_options=None, repeat=None, vocabulary_size=None, flops=True,
          model=None, labels_only=False):
    import torch

    from clipdense.apis.benchmark import benchmark_model, build_model
    from clipdense.apis.inference import set_model_vocabulary
    if model is None:
        if config == MASKCLIP_VIT:
            # one template per class: the text side is encoded once and
            # cached before timing; with random weights, 85 templates per
            # class would only slow the set-up
            cfg_options = dict(cfg_options or {}, **{
                'model.decode_head.text_encoder.templates': 'single'})
        model = build_model(config, device=args.device, random_weights=True,
                            cfg_options=cfg_options,
                            slide_batch_size=slide_batch,
                            labels_only=labels_only)
    if vocabulary_size:
        set_model_vocabulary(
            model, [f'object number {i}' for i in range(vocabulary_size)])
    torch.manual_seed(0)
    r = benchmark_model(model, shape=shape, precision=precision,
                        device=args.device,
                        repeat=repeat or args.repeat, warmup=2, flops=flops,
                        matmul_size=args.matmul_size)
    r['name'] = name
    log(f'{name}: median {r["latency_s"]["median"]:.3f} s'
        + (f', {r["fraction_of_matmul"]:.2f} of matmul'
           if r.get('fraction_of_matmul') else ''))
    return r, model


def s_(args, n):
    """A shape scaled down by --quick."""
    return n if not args.quick else max(64, n // 8)


def target_fp32_fraction(args, out):
    """The target is read on mmseg's default predict (full-size logits).
    Also reported: nn.MultiheadAttention instead of fused attention, and
    ``test_cfg.labels_only`` (labels without mmseg's full-size resize and
    argmax, which count no model FLOPs but take time)."""
    shape = (s_(args, 512), s_(args, 512))
    r, model = bench(MASKCLIP_VIT, 'MaskCLIP ViT-B/16 fp32', args, shape=shape,
                     labels_only=True)
    model.test_cfg['labels_only'] = True
    r_lo, _ = bench(MASKCLIP_VIT, 'MaskCLIP ViT-B/16 fp32, labels_only', args,
                    shape=shape, model=model)
    model.test_cfg['labels_only'] = False
    # the same model with nn.MultiheadAttention instead of fused attention
    r_mha, _ = bench(MASKCLIP_VIT, 'MaskCLIP ViT-B/16 fp32, nn.MultiheadAttention',
                     args, shape=shape,
                     cfg_options={'model.backbone.fused_attention': False})
    out['fp32_fraction'] = dict(
        target='achieved FLOP/s >= 0.7 of the same-run fp32 matmul',
        value=r['fraction_of_matmul'], met=r['fraction_of_matmul'] >= 0.7,
        per_round=[round(f, 3) for f in r['fraction_per_round']],
        best_vs_best=r['fraction_best_vs_best'],
        with_labels_only=r_lo['fraction_of_matmul'],
        without_fused_attention=r_mha['fraction_of_matmul'],
        runs=[r, r_lo, r_mha])


def paired(fns, args, repeat=None, **kwargs):
    """Round-robin timing of ``fns`` (name -> callable); see
    clipdense.apis.benchmark.compare_latency."""
    from clipdense.apis.benchmark import compare_latency
    res = compare_latency(fns, repeat=repeat or args.repeat, warmup=1,
                          device=args.device, **kwargs)
    for name, r in res['ratio'].items():
        log(f'paired: {list(fns)[0]} / {name} = {r:.3f} '
            f'(rounds {[round(x, 3) for x in res["ratio_per_round"][name]]})')
    return res


def model_fn(model, shape, args, precision='fp32', labels_only=None):
    from clipdense.apis.benchmark import make_inputs, predict_fn
    import torch
    torch.manual_seed(0)
    inputs, samples = make_inputs(model, 1, shape, args.device)
    run = predict_fn(model, inputs, samples, precision, args.device)
    if labels_only is None:
        return run

    def with_option():
        model.test_cfg['labels_only'] = labels_only
        return run()
    return with_option


def target_bf16(args, out):
    """fp32 and bf16 of one model, paired; the target is read on mmseg's
    default predict, the same pair with ``test_cfg.labels_only`` is
    reported beside it (the full-size resize and argmax cost about the same
    in both precisions, so they shrink the ratio)."""
    shape = (s_(args, 512), s_(args, 512))
    r32, model = bench(MASKCLIP_VIT, 'MaskCLIP ViT-B/16 fp32', args,
                       shape=shape, labels_only=True)
    model.test_cfg['labels_only'] = False
    r16, _ = bench(MASKCLIP_VIT, 'MaskCLIP ViT-B/16 bf16', args, shape=shape,
                   precision='bf16', model=model)
    pr = paired({'fp32': model_fn(model, shape, args, labels_only=False),
                 'bf16': model_fn(model, shape, args, 'bf16', labels_only=False),
                 'fp32, labels_only': model_fn(model, shape, args, labels_only=True),
                 'bf16, labels_only': model_fn(model, shape, args, 'bf16',
                                               labels_only=True)},
                args, alternate=True)
    t = pr['times']
    lo = [a / b for a, b in zip(t['fp32, labels_only'], t['bf16, labels_only'])]
    speedup = pr['ratio']['bf16']
    res = dict(target='bf16 >= 2x faster than fp32, >= 99% pixels agree',
               speedup=speedup,
               speedup_per_round=[round(x, 3) for x in pr['ratio_per_round']['bf16']],
               speedup_labels_only=statistics.median(lo),
               speedup_labels_only_per_round=[round(x, 3) for x in lo],
               runs=[r32, r16])
    if osp.isfile(TINY_CLIP) and osp.isdir(osp.join(SYNTH_ROOT, 'flat')):
        res['agreement'] = synthetic_agreement(args)
        res['met'] = speedup >= 2 and res['agreement'] >= 0.99
    else:
        res['agreement'] = None
        res['met'] = None
        res['note'] = (f'{TINY_CLIP} or {SYNTH_ROOT} missing: run '
                       '`make quickstart` for the agreement figure')
    out['bf16'] = res


def synthetic_agreement(args):
    """bf16 vs fp32 argmax agreement of MaskCLIP with the trained tiny CLIP
    on the synthetic world's flat val images."""
    import glob

    import mmcv
    import torch

    from clipdense.apis.benchmark import build_model, pixel_agreement
    from mmseg.structures import SegDataSample
    model = build_model(MASKCLIP_SYNTH, device=args.device, cfg_options={
        'model.backbone.pretrained': TINY_CLIP,
        'model.decode_head.text_encoder.pretrained': TINY_CLIP})
    files = sorted(glob.glob(osp.join(SYNTH_ROOT, 'flat', 'img_dir', 'val',
                                      '*.*')))
    files = files[:8 if args.quick else 50]
    batches = []
    for f in files:
        img = mmcv.imread(f)  # BGR
        data = model.data_preprocessor(
            dict(inputs=[torch.from_numpy(img).permute(2, 0, 1).contiguous()],
                 data_samples=[SegDataSample(metainfo=dict(
                     img_shape=img.shape[:2], ori_shape=img.shape[:2],
                     pad_shape=img.shape[:2], padding_size=[0, 0, 0, 0]))]),
            False)
        batches.append((data['inputs'], data['data_samples']))
    agree = pixel_agreement(model, batches, precision='bf16',
                            device=args.device)
    log(f'bf16 agreement on {len(files)} synthetic images: {agree:.4f}')
    return agree


def target_slide(args, out):
    import torch

    from clipdense.apis.benchmark import build_model, latency_row, make_inputs
    from clipdense.models.segmentors.batched_slide import slide_windows
    shape = (s_(args, 1024), s_(args, 2048))
    crop = s_(args, 512)
    stride = crop * 2 // 3
    opts = {'model.test_cfg': dict(mode='slide', crop_size=(crop, crop),
                                   stride=(stride, stride)),
            'model.decode_head.text_encoder.templates': 'single'}
    ref = build_model(MASKCLIP_VIT, device=args.device, random_weights=True,
                      cfg_options=opts)
    model = build_model(MASKCLIP_VIT, device=args.device, random_weights=True,
                        cfg_options=opts, slide_batch_size=6)
    model.load_state_dict(ref.state_dict())
    # identical results (same random input through both paths)
    inputs, samples = make_inputs(model, 1, shape, args.device)
    with torch.no_grad():
        a = ref.predict(inputs, [s.clone() for s in samples])[0]
        b = model.predict(inputs, [s.clone() for s in samples])[0]
    diff = (a.seg_logits.data - b.seg_logits.data).abs().max().item()
    same = (a.pred_sem_seg.data == b.pred_sem_seg.data).float().mean().item()
    names = ('MaskCLIP ViT-B/16 slide, mmseg loop',
             'MaskCLIP ViT-B/16 slide, batched x6')
    pr = paired({names[0]: model_fn(ref, shape, args),
                 names[1]: model_fn(model, shape, args)}, args,
                repeat=1 if args.quick else 3)
    speedup = pr['ratio'][names[1]]
    rows = [latency_row(n, m, pr['times'][n], shape=shape, device=args.device)
            for n, m in zip(names, (ref, model))]
    n_windows = len(slide_windows(shape[0], shape[1], (crop, crop),
                                  (stride, stride)))
    out['slide'] = dict(
        target='batched slide >= 1.3x faster than mmseg one-window slide',
        speedup=speedup, met=speedup >= 1.3,
        speedup_per_round=[round(x, 3) for x in pr['ratio_per_round'][names[1]]],
        windows=n_windows, max_abs_logit_diff=diff, pixel_agreement=same,
        runs=rows)


def target_san(args, out):
    shape = (s_(args, 640), s_(args, 640))
    rows = []
    san_name = 'mmseg SAN ViT-B/16 (171 classes)'
    rs, san = bench(mmseg_config(SAN_VIT), san_name, args,
                    shape=shape, cfg_options={'model.pretrained': None},
                    flops=False)
    rows.append(rs)
    fns = {san_name: model_fn(san, shape, args)}
    # DenseCLIP's neck and head are sized for its 150 training classes (it
    # can rename classes, not change their number): timed with those
    for cfg, name, k in (
            (MASKCLIP_VIT, 'clipdense MaskCLIP ViT-B/16 (171 classes)', 171),
            (DENSECLIP_VIT, 'clipdense DenseCLIP ViT-B/16 (150 classes)',
             None)):
        if not osp.isfile(cfg):
            continue
        r, m = bench(cfg, name, args, shape=shape, flops=False,
                     vocabulary_size=k)
        rows.append(r)
        fns[name] = model_fn(m, shape, args)
    # SAN / clipdense latency, round-robin (> 1: clipdense faster)
    pr = paired(fns, args)
    for r in rows[1:]:
        r['ratio_to_san'] = pr['ratio'][r['name']]
    out['san'] = dict(
        target='reported: SAN latency / clipdense latency, same run '
               '(> 1: clipdense faster)', runs=rows)


def target_vocabulary(args, out):
    """20 vs 1000 classes, MaskCLIP ViT-B/16 at 512, same weights.

    The target is read on ``test_cfg.labels_only`` (labels from the head's
    logits, clipdense.models.utils.label_argmax): the two vocabularies
    timed end to end in alternating order over 3x ``--repeat`` rounds (the
    effect is a few percent of a second-long forward; the machine drifts by
    more). A second reading times only the part that depends on the
    vocabulary (head and labels, from the same backbone features, many
    calls) and divides its growth by the 20-class end-to-end time. mmseg's
    predict (full-size logits) is timed as well, to show what labels_only
    removes, and the two paths' labels are compared at 1000 classes."""
    from clipdense.apis.benchmark import (build_model, compare_latency,
                                          latency_row, make_inputs,
                                          predict_fn)
    from clipdense.apis.inference import set_model_vocabulary
    import torch
    shape = (s_(args, 512), s_(args, 512))
    big_k = 100 if args.quick else 1000
    models = {}
    for k in (20, big_k):
        m = build_model(MASKCLIP_VIT, device=args.device, random_weights=True,
                        cfg_options={'model.decode_head.text_encoder.templates':
                                     'single'}, labels_only=True)
        if models:
            m.load_state_dict(models[20].state_dict())
        set_model_vocabulary(m, [f'object number {i}' for i in range(k)])
        models[k] = m

    def name(k, labels_only):
        return f'MaskCLIP ViT-B/16, {k} classes, ' + (
            'labels_only' if labels_only else 'full logits')

    def growth(times, a, b):
        return statistics.median([tb / ta for ta, tb in zip(times[a], times[b])]) - 1
    rows, result = [], {}
    for labels_only in (True, False):
        fns = {name(k, labels_only): model_fn(models[k], shape, args,
                                              labels_only=labels_only)
               for k in (20, big_k)}
        pr = paired(fns, args, repeat=args.repeat * (3 if labels_only else 1),
                    alternate=True)
        a, b = list(fns)
        result['labels_only' if labels_only else 'full'] = (
            growth(pr['times'], a, b),
            [round(tb / ta - 1, 3) for ta, tb in zip(pr['times'][a], pr['times'][b])],
            statistics.median(pr['times'][a]))
        rows += [latency_row(n, models[k], pr['times'][n], shape=shape,
                             device=args.device)
                 for n, k in zip(fns, (20, big_k))]
    # the vocabulary-dependent part alone: head + labels from fixed features
    tails = {}
    for k in (20, big_k):
        m = models[k]
        m.test_cfg['labels_only'] = True
        inputs, samples = make_inputs(m, 1, shape, args.device)
        with torch.no_grad():
            feats = m.extract_feat(inputs)

        def tail(m=m, feats=feats, samples=samples):
            with torch.no_grad():
                return m.labels_from_features(feats, samples)
        tails[f'head + labels, {k} classes'] = tail
    tr = compare_latency(tails, repeat=args.repeat * 4, warmup=2,
                         device=args.device, calls={n: 5 for n in tails},
                         alternate=True)
    t20, tbig = (statistics.median(v) for v in tr['times'].values())
    g, g_rounds, t_total20 = result['labels_only']
    same = total = 0
    for seed in range(3):
        inputs, samples = make_inputs(models[big_k], 1, shape, args.device, seed=seed)
        preds = []
        for labels_only in (False, True):
            models[big_k].test_cfg['labels_only'] = labels_only
            preds.append(predict_fn(models[big_k], inputs, samples, 'fp32',
                                    args.device)()[0].pred_sem_seg.data)
        same += (preds[0] == preds[1]).sum().item()
        total += preds[0].numel()
    log(f'vocabulary: end-to-end growth {g:.3f}; head + labels {t20 * 1e3:.1f} -> '
        f'{tbig * 1e3:.1f} ms, {(tbig - t20) / t_total20:.3f} of the 20-class time')
    out['vocabulary'] = dict(
        target=f'per-image cost grows < 10% from 20 to {big_k} classes',
        growth=g, met=g < 0.10, growth_per_round=g_rounds,
        head_and_labels_ms={'20': round(t20 * 1e3, 1), str(big_k): round(tbig * 1e3, 1)},
        growth_from_head_and_labels=(tbig - t20) / t_total20,
        growth_full_logits=result['full'][0],
        labels_only_vs_full_agreement=same / max(total, 1),
        runs=rows)


# the report section a target writes, where it is not the target's name
SECTION = dict(fp32='fp32_fraction')
TARGETS = dict(fp32=target_fp32_fraction, bf16=target_bf16,
               slide=target_slide, san=target_san, vocabulary=target_vocabulary)


def write_report(out, path, command):
    from clipdense.apis.benchmark import format_table
    commands = sorted({res['command'] for res in out.values()
                       if isinstance(res, dict) and res.get('command')}) or [command]
    lines = ['# Speed report (issue 13)', '',
             'Command: ' + ', '.join(f'`{c}`' for c in commands)
             + (' (each section names the run that wrote it)'
                if len(commands) > 1 else ''), '',
             f'Device: {out["device"]}, torch threads: {out["threads"]}. '
             'Random weights for timing; each section\'s ratios are from one '
             'run.', '',
             'Every target is read on a paired ratio: the two (or more) '
             'models run round-robin, the ratio is taken within each round '
             'and the median over rounds is reported (``*_per_round`` '
             'lists them); the FLOP/s fraction pairs each model run with '
             'matmuls timed right after it. The tables\' absolute times are '
             'separate runs and can disagree with the paired ratios: this '
             'machine\'s speed drifts by tens of percent within minutes.', '']
    for key, res in out.items():
        if not isinstance(res, dict) or 'runs' not in res:
            continue
        lines += [f'## {key}', '', f'Target: {res["target"]}', '']
        for k, v in res.items():
            if k in ('runs', 'target'):
                continue
            lines.append(f'- {k}: {v:.4f}' if isinstance(v, float)
                         else f'- {k}: {v}')
        extra = [r for r in res['runs'] if 'ratio_to_san' in r]
        for r in extra:
            lines.append(f'- {r["name"]}: SAN / clipdense latency = '
                         f'{r["ratio_to_san"]:.2f}')
        lines += ['', format_table(res['runs']), '']
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    with open(osp.splitext(path)[0] + '.json', 'w') as f:
        json.dump(out, f, indent=2, default=str)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=osp.join(ROOT, 'results', 'speed.md'))
    p.add_argument('--device', default='cpu')
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--matmul-size', type=int, default=2048)
    p.add_argument('--quick', action='store_true')
    p.add_argument('--only', nargs='+', choices=list(TARGETS), default=None)
    args = p.parse_args(argv)
    import torch

    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    out = dict(device=args.device, threads=torch.get_num_threads())
    cmd = ('python tools/analysis_tools/speed_report.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)).strip()
    json_path = osp.splitext(args.out)[0] + '.json'
    if args.only and osp.isfile(json_path):
        # --only rewrites its sections of an existing report, keeps the rest
        with open(json_path) as f:
            out = dict(json.load(f), **out)
    for name, fn in TARGETS.items():
        if args.only and name not in args.only:
            continue
        log(f'--- {name}')
        fn(args, out)
        out[SECTION.get(name, name)]['command'] = cmd
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_report(out, args.out, cmd)
    log(f'wrote {args.out}')
    return out


if __name__ == '__main__':
    main()
