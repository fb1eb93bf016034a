"""Which caption words a synthetic-world CLIP actually reads (issue #25,
item 3): writes ``results/caption_word_sensitivity.md`` / ``.json``.

    python tools/analysis_tools/caption_word_sensitivity.py

For each val image of a caption corpus, the image is scored against its
true caption and against the same caption with one kind of word changed:

* ``object``: the first thing-class noun (every occurrence) becomes another
  thing class that the image does not contain;
* ``colour``: the first colour word becomes another colour;
* ``position``: left/right, top/bottom, above/below swapped;
* ``state``: the anomaly corpus's state adjective flipped (a defect word to
  "intact", a normal word to "scratched");
* ``part``: the first two part names of a parts caption exchanged (which
  part affords which action).

The score of a kind is the fraction of images whose true caption has the
higher cosine similarity (chance 50%); images whose caption has no word of
that kind are not counted (``n``). A contrastive model can reach a low loss
on a batch by reading only the words that tell that batch's captions apart;
a kind near 50% is a kind the model does not read. Image-to-text recall@1
over the whole val set is given beside it.

The corpora: the quickstart's captions (``data/synthetic/captions``, the
tiny CLIP's training corpus) and the rich captions
(``data/synthetic_rich``, the proxy CLIP's).
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time
from collections import OrderedDict

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

KINDS = ('object', 'colour', 'position', 'state', 'part')
SWAP_POSITION = {'left': 'right', 'right': 'left', 'top': 'bottom',
                 'bottom': 'top', 'above': 'below', 'below': 'above'}


def _words(names):
    return re.compile(r'\b(' + '|'.join(sorted(map(re.escape, names),
                                               key=len, reverse=True)) + r')\b')


def make_swaps(rec, rng):
    """``{kind: changed caption}`` for the kinds this caption has."""
    from clipdense.datasets.synthetic import rich_captions as rc
    from clipdense.datasets.synthetic import spec
    cap = rec['caption']
    out = {}
    things = _words(spec.THING_CLASSES)
    m = things.search(cap)
    if m:
        present = set(rec.get('classes', [])) | set(things.findall(cap))
        choices = [c for c in spec.THING_CLASSES if c not in present]
        if choices:
            new = choices[rng.randint(len(choices))]
            out['object'] = re.sub(rf'\b{m.group(1)}\b', new, cap)
    m = _words(spec.COLOUR_NAMES).search(cap)
    if m:
        choices = [c for c in spec.COLOUR_NAMES if c != m.group(1)]
        out['colour'] = re.sub(rf'\b{m.group(1)}\b',
                               choices[rng.randint(len(choices))], cap)
    pos = _words(SWAP_POSITION)
    if pos.search(cap):
        out['position'] = pos.sub(lambda x: SWAP_POSITION[x.group(1)], cap)
    if rec.get('kind') == 'anomaly':
        defect = sorted({w for adjs, _ in rc.DEFECT_WORDS.values()
                         for w in adjs} | set(rc.ANOMALOUS_ADJ))
        words, new = ((defect, 'intact') if rec.get('defect') else
                      (rc.NORMAL_ADJ, 'scratched'))
        state = _words(words)
        if state.search(cap):
            out['state'] = state.sub(new, cap, count=1)
    if rec.get('kind') == 'parts':
        found = []
        for w in _words(spec.PARTS).findall(cap):
            if w not in found:
                found.append(w)
        if len(found) >= 2:
            a, b = found[:2]
            out['part'] = _words((a, b)).sub(
                lambda x: b if x.group(1) == a else a, cap)
    return out


@torch.no_grad()
def sensitivity(arch, weights, corpus_root, jsonl, limit=None, seed=0,
                batch=64):
    import open_clip

    from clipdense.evaluation.zero_shot import load_open_clip, preprocess
    model = load_open_clip(arch, weights)
    tok = open_clip.get_tokenizer(arch)
    recs = [json.loads(x) for x in open(osp.join(corpus_root, jsonl))][:limit]
    rng = np.random.RandomState(seed)
    swaps = [make_swaps(r, rng) for r in recs]
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size

    def enc_text(caps):
        return torch.cat([model.encode_text(tok(caps[i:i + batch]),
                                            normalize=True)
                          for i in range(0, len(caps), batch)])

    img = torch.cat([model.encode_image(preprocess(
        [osp.join(corpus_root, r['image']) for r in recs[i:i + batch]], size),
        normalize=True) for i in range(0, len(recs), batch)])
    true = enc_text([r['caption'] for r in recs])
    sim_true = (img * true).sum(-1)
    res = OrderedDict()
    for kind in KINDS:
        idx = [i for i, s in enumerate(swaps) if kind in s]
        if not idx:
            res[kind] = dict(n=0, score=None)
            continue
        alt = enc_text([swaps[i][kind] for i in idx])
        wins = (sim_true[idx] > (img[idx] * alt).sum(-1)).float()
        res[kind] = dict(n=len(idx), score=float(100 * wins.mean()))
    r1 = (img @ true.t()).argmax(1) == torch.arange(len(recs))
    res['recall@1'] = dict(n=len(recs), score=float(100 * r1.float().mean()))
    return res


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data',
                                                        'synthetic'))
    parser.add_argument('--rich-root', default=osp.join(ROOT, 'data',
                                                        'synthetic_rich'))
    parser.add_argument('--tiny', default=osp.join(
        ROOT, 'work_dirs', 'quickstart', 'tiny_clip.pt'))
    parser.add_argument('--proxy', default=osp.join(
        ROOT, 'work_dirs', 'proxy', 'proxy_clip.pt'))
    parser.add_argument('--limit', type=int, default=None,
                        help='first N val captions of each corpus')
    parser.add_argument('--out', default=osp.join(
        ROOT, 'results', 'caption_word_sensitivity'))
    args = parser.parse_args(argv)
    from clipdense.models.utils.clip_archs import register_clip_archs
    register_clip_archs()
    models = [('tiny CLIP (quickstart)', 'clipdense-synth-rn', args.tiny),
              ('proxy CLIP', 'clipdense-synth-vit8', args.proxy)]
    corpora = [('quickstart captions', args.data_root,
                osp.join('captions', 'clip_val.jsonl')),
               ('rich captions', args.rich_root, 'clip_val.jsonl')]
    for _, _, w in models:
        if not osp.isfile(w):
            raise SystemExit(f'no weights at {w}: run `make quickstart` (tiny '
                             'CLIP) and `make proxy-clip` (proxy CLIP) first')
    for _, root, jl in corpora:
        if not osp.isfile(osp.join(root, jl)):
            raise SystemExit(f'no corpus at {osp.join(root, jl)}: run `make '
                             'quickstart` / `make proxy-clip` first')
    t0 = time.time()
    results = OrderedDict()
    for name, arch, w in models:
        for cname, root, jl in corpora:
            results[f'{name} | {cname}'] = sensitivity(
                arch, w, root, jl, limit=args.limit)
    cmd = 'python tools/analysis_tools/caption_word_sensitivity.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    lines = ['# Which caption words the synthetic CLIPs read', '',
             f'Command: `{cmd.strip()}`', '',
             'Val captions of each corpus; per kind of word, % of images whose '
             'true caption beats the same caption with that word changed '
             '(chance 50; n = captions with such a word). Definitions: the '
             "script's docstring.", '',
             '| model | val corpus | ' + ' | '.join(KINDS) +
             ' | image-to-text recall@1 |',
             '| --- | --- | ' + ' | '.join('---' for _ in KINDS) + ' | --- |']
    for key, r in results.items():
        cells = [f'{r[k]["score"]:.1f} (n={r[k]["n"]})' if r[k]['n'] else '-'
                 for k in KINDS + ('recall@1', )]
        lines.append(f'| {" | ".join(key.split(" | "))} | ' + ' | '.join(cells)
                     + ' |')
    lines += ['', f'Wall time {time.time() - t0:.0f} s.', '']
    md = '\n'.join(lines)
    from clipdense.fileio import atomic_write_bytes
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    atomic_write_bytes(args.out + '.md', md.encode())
    atomic_write_bytes(args.out + '.json', json.dumps(
        dict(command=cmd.strip(), results=results), indent=2).encode())
    print(md)
    return results


if __name__ == '__main__':
    main()
