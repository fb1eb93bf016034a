"""The papers' headline ablations rerun on the proxy CLIP (issue #25): writes
``results/ablations.md`` / ``.json``.

    python tools/analysis_tools/ablations_table.py

One row per claim: our numbers on the proxy CLIP, the margin, the seed
spread, and whether the claim is reproduced in direction, and beyond twice
the seed spread. A row is filled only from a results file of a rerun on the
proxy; a claim with no such file says "not rerun" (its tiny-CLIP result
stays in the results file named in the row).

Every proxy bench writes a JSON with an ``"ablation"`` entry (the format is
:func:`summarize`'s docstring): the claim, and for each metric the arms in
the claim's order (best first) with one value per training seed. Two benches
that predate that format are read by adapters here:

* MaskCLIP > naive dense CLIP: ``results/training_free_proxy.json``
  (``tools/analysis_tools/bench_training_free_proxy.py``, the shipped proxy
  configs through the test loop), mIoU averaged over the four styles. Both
  are training-free and deterministic (one proxy trained). When
  ``results/maskclip_seeds_proxy.json`` exists
  (``tools/analysis_tools/bench_maskclip_proxy_seeds.py``), its ``"ablation"``
  entry is read instead: the same two rows on proxies trained with other
  seeds on the same corpus, one value per proxy seed.
* AnoVL TTA > training-free > CLIP: ``results/anomaly_proxy.json``
  (``tools/analysis_tools/bench_anomaly_proxy.py``), pixel AUROC; the CLIP
  and training-free rows are deterministic, the TTA row has one run per seed.

Definitions: the margin of a step "A > B" is mean(A) - mean(B) over seeds
(sign flipped for a lower-is-better metric); the seed spread of an arm is
max - min over its seeds (0 for a deterministic arm; unmeasured for a
stochastic arm run with one seed), and a step's spread is the larger of its
two arms'. A claim is *reproduced in direction* when every step of every
metric has a positive margin (one that rounds to +0.00 is a tie, not a
reproduction), and *beyond the seed spread* when, in
addition, every margin exceeds its step's spread (the row says when every
margin also exceeds twice the spread, the issue's bar for adding seeds). A claim whose arms are all
deterministic has no seed spread, which the row says: the variance left is
the proxy's own training seed, measured only where proxies of other seeds
were trained (the MaskCLIP row above).
"""
import argparse
from collections import OrderedDict
import glob
import json
import os
import os.path as osp
import sys

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CLAIMS = [
    ('DenseCLIP > CLIP + FPN (segmentation)', 'results/denseclip_synthetic.md'),
    ('DenseCLIP det > CLIP det', 'results/denseclip_det_synthetic.md'),
    ('MaskCLIP > naive dense CLIP', 'results/maskclip_synthetic.md'),
    ('OVSeg ensemble with adapted CLIP > proposals alone',
     'results/ovseg_synthetic.md'),
    ('ReCo+ > ReCo', 'results/reco_synthetic.md'),
    ('AnoVL TTA > training-free > CLIP', 'results/anomaly_synthetic.md'),
    ('trained affordance head > frozen CLIP', 'results/affordance_synthetic.md'),
    ('CLIP init > random init under style shift (VLTSeg)',
     'results/vltseg_synthetic.md'),
]


def _fmt(v):
    return f'{v:.2f}' if abs(v) < 10 else f'{v:.1f}'


def summarize(ab):
    """One table row from an ``"ablation"`` entry::

        {"claim": str,
         "metrics": [{"name": str, "higher_is_better": bool,
                      "order": [best arm, ..., baseline arm],
                      "arms": {arm: [value per seed, ...]},
                      "deterministic": [arms with no randomness]}],
         "seeds": [...], "schedule": str, "note": str}

    Raises ``ValueError`` naming the problem when the entry is malformed.
    """
    metrics = ab.get('metrics')
    if not metrics:
        raise ValueError(f'ablation {ab.get("claim")!r}: no "metrics" list')
    ours, margins, spreads = [], [], []
    direction, beyond, twice, unmeasured, all_det = True, True, True, False, True
    for m in metrics:
        order, arms = m.get('order', []), m.get('arms', {})
        det = set(m.get('deterministic', []))
        missing = [a for a in order if not arms.get(a)]
        if len(order) < 2 or missing:
            raise ValueError(
                f'ablation {ab.get("claim")!r}, metric {m.get("name")!r}: '
                f'"order" needs two or more arms with values in "arms" '
                f'(missing: {missing})')
        sign = 1.0 if m.get('higher_is_better', True) else -1.0
        means = {a: float(np.mean(arms[a])) for a in order}

        def spread(a):
            vals = arms[a]
            if a in det:
                return 0.0
            return float(np.ptp(vals)) if len(vals) > 1 else None

        ours.append(f'{m["name"]}: ' + ', '.join(
            f'{a} {_fmt(means[a])}' + (
                ' (seeds ' + ', '.join(_fmt(v) for v in arms[a]) + ')'
                if len(arms[a]) > 1 else '') for a in order))
        for a, b in zip(order, order[1:]):
            mg = sign * (means[a] - means[b])
            sa, sb = spread(a), spread(b)
            sp = None if sa is None or sb is None else max(sa, sb)
            all_det &= a in det and b in det
            # a margin that rounds to +0.00 (the tables' precision) is a
            # tie, not a reproduction
            direction &= round(mg, 2) > 0
            if sp is None:
                unmeasured = True
                beyond = twice = False
            else:
                beyond &= mg > sp
                twice &= mg > 2 * sp
            label = '' if len(metrics) == 1 else f'{m["name"]} '
            margins.append(f'{label}{a} - {b}: {mg:+.2f}')
            spreads.append(f'{label}{a} vs {b}: ' + (
                'not measured (one seed)' if sp is None else
                'deterministic' if a in det and b in det else f'{sp:.2f}'))
    if not direction:
        beyond_s = 'no'
    elif all_det:
        beyond_s = 'no seed spread (deterministic arms, one proxy)'
    elif unmeasured:
        beyond_s = 'not measured'
    elif not beyond:
        beyond_s = 'no'
    else:
        beyond_s = 'yes' + (' (above twice the spread)' if twice else
                            ' (between 1x and 2x the spread)')
    return dict(ours='; '.join(ours), margin='; '.join(margins),
                spread='; '.join(spreads),
                reproduced='yes' if direction else 'no', beyond=beyond_s,
                schedule=ab.get('schedule', ''), note=ab.get('note', ''),
                seeds=ab.get('seeds'))


def maskclip_ablation(path):
    """MaskCLIP vs the naive dense map from the shipped proxy configs."""
    res = json.load(open(path))['results']
    styles = list(res['MaskCLIP'])
    arms = {name: [float(np.mean([res[name][s]['mIoU'] for s in styles]))]
            for name in ('MaskCLIP', 'naive dense CLIP')}
    per = ', '.join(f'{s} {res["MaskCLIP"][s]["mIoU"]:.1f} vs '
                    f'{res["naive dense CLIP"][s]["mIoU"]:.1f}' for s in styles)
    return dict(
        claim='MaskCLIP > naive dense CLIP',
        metrics=[dict(name='mIoU, mean over 4 styles (%)',
                      higher_is_better=True,
                      order=['MaskCLIP', 'naive dense CLIP'], arms=arms,
                      deterministic=list(arms))],
        seeds=[], schedule='training-free',
        note=f'Per style (MaskCLIP vs naive): {per}.')


def anovl_ablation(path):
    rows = {r['method'].split(' (')[0]: r for r in json.load(open(path))['rows']}
    arms = {
        'TTA': [r['metrics']['pixel_auroc'] for r in rows[
            'AnoVL training-free + test-time adaptation']['runs']],
        'training-free': [rows['AnoVL training-free']['mean']['pixel_auroc']],
        'CLIP': [rows['CLIP baseline']['mean']['pixel_auroc']],
    }
    return dict(
        claim='AnoVL TTA > training-free > CLIP',
        metrics=[dict(name='pixel AUROC (%)', higher_is_better=True,
                      order=['TTA', 'training-free', 'CLIP'], arms=arms,
                      deterministic=['training-free', 'CLIP'])],
        seeds=[r['seed'] for r in rows[
            'AnoVL training-free + test-time adaptation']['runs']],
        schedule='test-time adaptation per image; no training',
        note='')


def collect(results_dir):
    """Every ``"ablation"`` entry in ``results_dir/*_proxy.json``, by claim,
    plus the adapters' rows."""
    found = {}
    for path in sorted(glob.glob(osp.join(results_dir, '*_proxy.json'))):
        with open(path) as f:
            data = json.load(f)
        entries = data.get('ablation')
        if entries is None:
            continue
        for ab in entries if isinstance(entries, list) else [entries]:
            found[ab['claim']] = (ab, path)
    tf = osp.join(results_dir, 'training_free_proxy.json')
    if 'MaskCLIP > naive dense CLIP' not in found and osp.isfile(tf):
        found['MaskCLIP > naive dense CLIP'] = (maskclip_ablation(tf), tf)
    an = osp.join(results_dir, 'anomaly_proxy.json')
    if 'AnoVL TTA > training-free > CLIP' not in found and osp.isfile(an):
        found['AnoVL TTA > training-free > CLIP'] = (anovl_ablation(an), an)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--results-dir', default=osp.join(ROOT, 'results'),
                        help='where the proxy benches wrote *_proxy.json')
    parser.add_argument('--out', default=osp.join(ROOT, 'results',
                                                  'ablations'))
    parser.add_argument('--compare', nargs='*',
                        default=[osp.join(ROOT, 'results', f'proxy_v{i}')
                                 for i in (1, 2, 3)],
                        help='folders of earlier proxies\' *_proxy.json, '
                        'oldest first (a column of their outcome each; a '
                        'folder that does not exist is skipped, "" or no '
                        'folder leaves them out)')
    args = parser.parse_args(argv)
    cmd = 'python tools/analysis_tools/ablations_table.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    found = collect(args.results_dir)
    unknown = sorted(set(found) - {c for c, _ in CLAIMS})
    if unknown:
        raise SystemExit(f'ablations_table: claims not in the table: {unknown}'
                         '; use the exact claim strings of CLAIMS')
    compare = OrderedDict((osp.relpath(d, ROOT) if osp.abspath(d).startswith(
        ROOT) else d, collect(d)) for d in args.compare if d and osp.isdir(d))
    rows = []
    for claim, tiny_file in CLAIMS:
        row = dict(claim=claim, ours='not rerun', margin='not rerun',
                   spread='not rerun', reproduced='not rerun',
                   beyond='not rerun', schedule='', note='',
                   source=f'{tiny_file} (tiny CLIP)')
        if claim in found:
            ab, path = found[claim]
            row.update(summarize(ab))
            row['source'] = osp.relpath(path, ROOT) if path.startswith(
                ROOT) else path
        if compare:
            row['earlier'] = OrderedDict()
        for name, earlier in compare.items():
            e = dict(text='not rerun', reproduced='not rerun',
                     beyond='not rerun')
            if claim in earlier:
                old = summarize(earlier[claim][0])
                e = dict(text=(f'{old["margin"]}; in direction: '
                               f'{old["reproduced"]}, beyond the spread: '
                               f'{old["beyond"]}'),
                         reproduced=old['reproduced'], beyond=old['beyond'])
            row['earlier'][name] = e
        rows.append(row)
    lines = ['# Headline ablations on the proxy CLIP', '',
             f'Command: `{cmd.strip()}`', '',
             'Proxy CLIP: `clipdense-synth-vit8` (`make proxy-clip`, '
             '`results/proxy_clip.md`), the same weights for every row, '
             'except a row whose schedule says its seeds are the proxy '
             'CLIP\'s training seeds: that row ran on one proxy per seed. '
             'Margin: mean over seeds of the better arm minus the other '
             '(lower-is-better metrics flipped); seed spread: max - min over '
             'the training seeds; "beyond" = every margin above its spread '
             '(and whether also above twice it). Definitions: the docstring of the script. "not rerun": '
             'no proxy results file yet; the tiny-CLIP result is in the file '
             'named under "source".', '',
             '| claim | our numbers (proxy CLIP) | margin | seed spread | '
             'reproduced in direction | beyond the seed spread | '
             'source |' + ''.join(f' earlier proxy (`{n}`) |'
                                  for n in compare),
             '| --- | --- | --- | --- | --- | --- | --- |' +
             ' --- |' * len(compare)]
    for r in rows:
        lines.append(f'| {r["claim"]} | {r["ours"]} | {r["margin"]} | '
                     f'{r["spread"]} | {r["reproduced"]} | {r["beyond"]} | '
                     f'{r["source"]} |' +
                     ''.join(f' {e["text"]} |'
                             for e in r.get('earlier', {}).values()))
    lines += ['', '## Schedules and notes', '']
    for r in rows:
        if r['reproduced'] == 'not rerun':
            continue
        lines.append(f'- **{r["claim"]}**: ' + ' '.join(
            x for x in (f'Schedule: {r["schedule"]}.' if r['schedule'] else '',
                        r['note']) if x))
    n_dir = sum(r['reproduced'] == 'yes' for r in rows)
    n_beyond = sum(r['beyond'].startswith('yes') for r in rows)
    rerun = sum(r['reproduced'] != 'not rerun' for r in rows)
    lines += ['', f'Reproduced in direction: {n_dir} of {rerun} rerun '
              f'({len(rows)} claims); in direction and beyond the seed spread: '
              f'{n_beyond}.', '']
    for name in compare:
        old_dir = sum(r['earlier'][name]['reproduced'] == 'yes' for r in rows)
        old_beyond = sum(r['earlier'][name]['beyond'].startswith('yes')
                         for r in rows)
        lines += [f'Earlier proxy (`{name}`): {old_dir} in direction, '
                  f'{old_beyond} beyond the seed spread.', '']
    md = '\n'.join(lines)
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    from clipdense.fileio import atomic_write_bytes
    atomic_write_bytes(args.out + '.md', md.encode())
    atomic_write_bytes(args.out + '.json', json.dumps(
        dict(command=cmd.strip(), rows=rows), indent=2).encode())
    print(md)
    return rows


if __name__ == '__main__':
    main()
