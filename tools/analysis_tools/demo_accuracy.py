"""Pixel accuracy of the zero-shot demo on the synthetic world, the way a
user runs it: writes ``results/maskclip_demo.{md,json}``.

    python tools/analysis_tools/demo_accuracy.py [--split val] [--num 50]

MaskCLIP with the shipped synthetic config
(``configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py``, the
quickstart's tiny CLIP, no pixel labels) labels each flat image through
``clipdense.apis.inference_model`` (what ``demo/image_demo.py`` calls) with
one of three vocabularies:

* **all 13 classes** - the config's vocabulary;
* **classes present** - the names of the classes in the image (what a user
  who asks "where is the ball, the cup and the grass?" types);
* **present + 2 others** - those plus two classes that are not in the image
  (seeded), so the model must also reject names.

Reported: accuracy on thing pixels (objects) and on all labelled pixels,
with the images as they are (x1; the config itself doubles them before the
CLIP, whose C5 map is 4x4 at 128 px) and upscaled x2 by the user before the
demo (x4 into the CLIP). Ground truth is used only to
pick the vocabularies and to score. ``tests/apis/test_image_demo.py`` runs
the third protocol through the demo's command line on 16 val images.
"""
import argparse
import json
import os
import os.path as osp
import random
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py')
WORLD = osp.join(ROOT, 'data', 'synthetic')
CLIP = osp.join(ROOT, 'work_dirs', 'quickstart', 'tiny_clip.pt')
PROTOCOLS = ('all 13 classes', 'classes present', 'present + 2 others')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--split', default='val')
    p.add_argument('--num', type=int, default=50, help='images (first N)')
    p.add_argument('--scales', type=int, nargs='+', default=[1, 2])
    p.add_argument('--out', default=osp.join(ROOT, 'results', 'maskclip_demo.md'))
    args = p.parse_args(argv)
    if not (osp.isfile(CLIP) and osp.isdir(osp.join(WORLD, 'flat'))):
        print(f'needs {CLIP} and {WORLD}: run `make quickstart` first', file=sys.stderr)
        return 2
    import cv2
    import numpy as np
    import torch

    from clipdense.apis.inference import inference_model, init_model
    torch.set_num_threads(min(2, torch.get_num_threads()))
    os.chdir(ROOT)  # the config names the CLIP weights relative to the root
    model = init_model(CONFIG, None, device='cpu')
    vocab = list(model.cfg.vocabulary)
    meta = json.load(open(osp.join(WORLD, 'meta.json')))
    n_thing = len(meta['thing_classes'])
    src = osp.join(WORLD, 'flat', 'img_dir', args.split)
    names = sorted(os.listdir(src))[:args.num]
    rng = random.Random(0)
    counts = {}
    for name in names:
        img = cv2.imread(osp.join(src, name))
        gt = cv2.imread(osp.join(WORLD, 'flat', 'ann_dir', args.split, name),
                        cv2.IMREAD_UNCHANGED)
        present = sorted(set(np.unique(gt).tolist()) - {255})
        others = [c for c in range(len(vocab)) if c not in present]
        vocabs = dict(zip(PROTOCOLS, [list(range(len(vocab))), present,
                                      sorted(present + rng.sample(others, 2))]))
        thing, valid = gt < n_thing, gt != 255
        for proto, ids in vocabs.items():
            for scale in args.scales:
                im = img if scale == 1 else cv2.resize(
                    img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
                out = inference_model(model, im, vocabulary=[vocab[i] for i in ids])
                pred = out.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
                if scale != 1:
                    pred = cv2.resize(pred, gt.shape[::-1], interpolation=cv2.INTER_NEAREST)
                lab = np.array(ids)[pred]
                c = counts.setdefault((proto, scale), [0, 0, 0, 0])
                c[0] += int((lab[thing] == gt[thing]).sum())
                c[1] += int(thing.sum())
                c[2] += int((lab[valid] == gt[valid]).sum())
                c[3] += int(valid.sum())
    rows = [dict(vocabulary=proto, scale=scale,
                 thing_pixel_acc=100 * c[0] / max(c[1], 1),
                 all_pixel_acc=100 * c[2] / max(c[3], 1))
            for (proto, scale), c in counts.items()]
    command = ('python tools/analysis_tools/demo_accuracy.py'
               + (f' --split {args.split}' if args.split != 'val' else '')
               + (f' --num {args.num}' if args.num != 50 else ''))
    lines = ['# The zero-shot demo on the synthetic world (MaskCLIP, tiny CLIP)', '',
             f'Command: `{command}`', '',
             f'{len(names)} flat `{args.split}` images, '
             '`configs/maskclip/maskclip_clip-synth-rn_synthetic-128x128.py` as '
             'shipped (no pixel labels); the vocabulary protocols are defined in '
             'the script\'s docstring. Pixel accuracy, %. "image scale": the '
             'image given to the demo (x1: as it is; the config doubles it before '
             'the CLIP).', '',
             '| vocabulary | image scale | thing pixels | all labelled pixels |',
             '| --- | --- | --- | --- |']
    for r in rows:
        lines.append(f'| {r["vocabulary"]} | x{r["scale"]} | '
                     f'{r["thing_pixel_acc"]:.1f} | {r["all_pixel_acc"]:.1f} |')
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.splitext(args.out)[0] + '.json', 'w') as f:
        json.dump(dict(command=command, images=names, rows=rows), f, indent=2)
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
