"""Write pseudo-labels (mmseg layout: png label maps + split.txt) for a
folder of unlabelled images with any open-vocabulary segmentor, e.g. ReCo
for ReCo+ (see clipdense.apis.pseudo_labels).

    python tools/dataset_converters/reco_pseudo_labels.py \
        configs/reco/reco_clip-synth-rn_synthetic-128x128.py \
        --img-dir data/synthetic/flat/img_dir/train \
        --out-dir work_dirs/reco/pseudo_labels/synthetic-flat-train
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None):
    p = argparse.ArgumentParser(description='pseudo-labels in the mmseg format')
    p.add_argument('config')
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--img-dir', required=True)
    p.add_argument('--out-dir', required=True)
    p.add_argument('--vocabulary', default=None,
                   help='comma-separated class names (default: the config\'s)')
    p.add_argument('--device', default='cpu')
    from mmengine.config import DictAction
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='key=value overrides of the config')
    a = p.parse_args(argv)
    from clipdense.apis import init_model, write_pseudo_labels
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model = init_model(a.config, a.checkpoint, device=a.device,
                       cfg_options=dict(a.cfg_options) or None)
    vocab = [v.strip() for v in a.vocabulary.split(',')] if a.vocabulary else None
    meta = write_pseudo_labels(model, a.img_dir, a.out_dir, vocabulary=vocab)
    print(f"wrote {meta['count']} label maps ({len(meta['classes'])} classes) to {a.out_dir}")


if __name__ == '__main__':
    main()
