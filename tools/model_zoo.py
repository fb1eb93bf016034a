"""Write docs/model_zoo.md from the per-method metafiles.

    python tools/model_zoo.py            # (re)write docs/model_zoo.md
    python tools/model_zoo.py --check    # exit 1 when the page is stale

Every ``configs/<method>/metafile.yml`` (format:
:mod:`clipdense.utils.metafiles`) gives, per config, the backbone, dataset,
crop, schedule, the paper's number and where the synthetic-world number is
(a key of a ``results/*.json`` file written by a benchmark script); this
script adds the commands (``tools/train.py`` / ``dist_train.sh`` from the
``{N}xb{B}`` part of the config name, ``tools/test.py``) and writes one page.
``tests/tools/test_model_zoo.py`` fails when the page differs from what this
script would write, or when a config has no metafile entry.
"""
import argparse
import os.path as osp
import re
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from clipdense.utils.metafiles import load_metafiles, synthetic_value  # noqa: E402

OUT = osp.join(ROOT, 'docs', 'model_zoo.md')
TASK_NAMES = {'semseg': 'semantic segmentation', 'detection': 'detection',
              'anomaly': 'anomaly localisation', 'affordance': 'affordance grounding',
              'clip': 'CLIP pre-training'}


def _cell(value) -> str:
    return str(value).replace('|', '\\|').replace('\n', ' ')


def paper_cell(model) -> str:
    paper = model.get('Paper')
    if not paper:
        return '-'
    return '; '.join(f'{k} {v}' for k, v in paper.items()) + ' (paper)'


def synthetic_cell(model) -> str:
    spec = model.get('Synthetic')
    if not spec:
        return '-'
    value = synthetic_value(spec, ROOT)
    if value is None:
        return f'not run yet ({spec["File"]})'
    return (f'{value:.2f} {spec["Metric"]} '
            f'([{osp.basename(spec["File"])}](../{spec["File"]}))')


def weights_cell(model) -> str:
    """Training-free, or how released weights load: a ``Converter`` mapping
    (``Script``, ``Released``, optional ``Usage``) is checked against the
    repository, so the page says "convert with ..." only once the script
    exists."""
    if model['Training-free']:
        return 'none (training-free)'
    conv = model.get('Converter') or '-'
    if not isinstance(conv, dict):
        return _cell(conv)
    script = conv['Script']
    if osp.isfile(osp.join(ROOT, script)):
        usage = conv.get('Usage') or f'python {script} SRC DST'
        return _cell(f'{conv["Released"]}: `{usage}`')
    return _cell(f'no converter yet for {conv["Released"]}')


def commands(model) -> list:
    """Train and test commands of one config (multi-GPU recipes with
    ``dist_train.sh`` / ``dist_test.sh`` from the ``{N}xb{B}`` name part)."""
    cfg = model['Config']
    m = re.search(r'_(\d+)xb(\d+)-', osp.basename(cfg))
    gpus = int(m.group(1)) if m else 1
    if model['Training-free']:
        return [f'python tools/test.py {cfg} none']
    if gpus > 1:
        return [f'tools/dist_train.sh {cfg} {gpus}',
                f'tools/dist_test.sh {cfg} CHECKPOINT {gpus}']
    return [f'python tools/train.py {cfg}', f'python tools/test.py {cfg} CHECKPOINT']


def render(metas=None) -> str:
    metas = load_metafiles(ROOT) if metas is None else metas
    out = ['# Model zoo', '',
           'Written by `python tools/model_zoo.py` from `configs/*/metafile.yml`; do '
           'not edit by hand (`tests/tools/test_model_zoo.py` fails when this page '
           'is stale).', '',
           '* **Paper**: the number the paper (or, marked [3rd], a later paper) '
           'reports for that setting. clipdense has **not** reproduced these: the '
           'development machines have neither the datasets nor the released weights.',
           '* **Synthetic world**: measured by clipdense on the embedded synthetic '
           'world with the tiny CLIP (`make quickstart`), read from the results file '
           'linked in the cell, which names the benchmark command that wrote it.',
           '* **Weights**: what a config needs besides its `pretrained` CLIP weights '
           '(open_clip tags download on first use), and whether released checkpoints '
           'of the authors can be converted.',
           '* Try any training-free segmentation, anomaly or affordance model in the '
           'browser: `python demo/web_demo.py` (see the README).', '',
           '| method | task | configs | training-free | paper | code |',
           '| --- | --- | --- | --- | --- | --- |']
    for meta in metas:
        c = meta['Collection']
        paper = c.get('Paper') or {}
        free = sorted({m['Training-free'] for m in meta['Models']})
        out.append(
            f'| [{_cell(c["Name"])}](#{anchor(c["Name"])}) | {TASK_NAMES[c["Task"]]} | '
            f'{len(meta["Models"])} | {"/".join("yes" if f else "no" for f in free[::-1])} | '
            f'{_paper_link(paper)} | '
            f'{_link(c.get("Code", "-"))} |')
    for meta in metas:
        c = meta['Collection']
        paper = c.get('Paper') or {}
        readme = f'{c["Folder"]}/README.md'
        out += ['', f'## {c["Name"]}', '',
                f'{_cell(paper.get("Title", ""))} ({_cell(paper.get("Venue", "-"))}, '
                f'{paper.get("URL", "-")}). Code: {_link(c.get("Code", "-"))}. '
                + (f'Details: [{readme}](../{readme}). ' if osp.isfile(osp.join(ROOT, readme))
                   else '')
                + f'Metadata: [{c["Metafile"]}](../{c["Metafile"]}).', '',
                '| config | backbone | dataset | crop | schedule | paper | '
                'synthetic world | weights |',
                '| --- | --- | --- | --- | --- | --- | --- | --- |']
        for m in meta['Models']:
            name = osp.basename(m['Config'])[:-3]
            label = f'`{name}`' + (f'<br>{_cell(m["Name"])}' if m['Name'] != name else '')
            if m.get('Notes'):
                label += f'<br>*{_cell(m["Notes"])}*'
            out.append(f'| {label} | {_cell(m["Backbone"])} | {_cell(m["Dataset"])} | '
                       f'{_cell(m["Crop"])} | {_cell(m["Schedule"])} | {paper_cell(m)} | '
                       f'{synthetic_cell(m)} | {weights_cell(m)} |')
        out += ['', '```bash']
        for m in meta['Models']:
            out += commands(m)
        out += ['```']
    return '\n'.join(out) + '\n'


def _paper_link(paper) -> str:
    venue = _cell(paper.get('Venue', '-'))
    return f'[{venue}]({paper["URL"]})' if paper.get('URL') and venue != '-' else venue


def _link(text) -> str:
    text = _cell(text)
    return re.sub(r'(https?://\S+)', r'<\1>', text)


def anchor(title: str) -> str:
    """GitHub's heading anchor."""
    a = re.sub(r'[^\w\- ]', '', title.strip().lower())
    return a.replace(' ', '-')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=OUT, help='output page (default docs/model_zoo.md)')
    p.add_argument('--check', action='store_true',
                   help='do not write; exit 1 when the page is stale')
    args = p.parse_args(argv)
    text = render()
    old = open(args.out, encoding='utf-8').read() if osp.isfile(args.out) else None
    if args.check:
        if old != text:
            print(f'{args.out} is stale: run python tools/model_zoo.py', file=sys.stderr)
            return 1
        print(f'{args.out} is up to date')
        return 0
    import os
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write(text)
    print(f'wrote {args.out} ({sum(1 for line in text.splitlines() if line.startswith("| `"))}'
          ' configs)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
