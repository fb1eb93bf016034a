"""Write Cityscapes train-id label files (19 classes, 255 = ignore) for the
domain generalization datasets, as mmseg's Cityscapes converter does.

    python tools/dataset_converters/dg_labels.py {gta5,synthia,cityscapes,acdc,mapillary} ROOT [--out-root DIR] [--overwrite]

Layouts and outputs: see
:func:`clipdense.datasets.cityscapes_labels.convert_dataset`. Unlike
mmseg's Cityscapes converter this one needs no cityscapesScripts: it maps
``*_gtFine_labelIds.png`` directly. BDD100K's semantic masks are train ids
already and need no conversion.
"""
import argparse
import time

from clipdense.datasets.cityscapes_labels import CONVERTERS, convert_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset', choices=sorted(CONVERTERS))
    parser.add_argument('root', help='the dataset folder')
    parser.add_argument('--out-root', default=None,
                        help='write under this folder instead of next to the '
                        'raw labels')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite existing train-id files')
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    written = convert_dataset(args.dataset, args.root, args.out_root,
                              overwrite=args.overwrite)
    print(f'{args.dataset}: wrote {len(written)} train-id label files in '
          f'{time.perf_counter() - t0:.1f}s')
    return written


if __name__ == '__main__':
    main()
