"""Write the class names OVSeg (Liang et al., CVPR 2023) prompts CLIP with,
one a line, from a checkout of the authors' code and of detectron2.

The authors take every dataset's names from its detectron2 registration
(``MetadataCatalog.get(name).stuff_classes``, each name ``.strip()``-ed,
``ovseg_model.py: get_class_name_list``) and put the whole string,
commas included ("road, route"), into each template: a comma-separated
name is one prompt for them, not synonyms to average.

- ADE20K-150: detectron2's ``ADE20K_SEM_SEG_CATEGORIES``
  (``detectron2/data/datasets/builtin_meta.py``; 51 differ from mmseg's
  ``ADE20KDataset`` names, e.g. "tv" / "television receiver").
- ADE20K-847, Pascal Context-59/459, VOC-20, COCO-Stuff-171: the authors'
  ``open_vocab_seg/data/datasets/register_*.py`` (COCO-Stuff: the raw
  training names such as "wall-other").

The names are read with ``ast`` (nothing of either checkout is imported or
run) and written to ``clipdense/datasets/resources/ovseg_names/`` by
default, where the OVSeg paper configs read them
(``DatasetVocabularyHook(vocabulary_file=...)``)::

    python tools/dataset_converters/ovseg_class_names.py \
        --ovseg-root /path/to/ov-seg --detectron2-root /path/to/detectron2
"""
import argparse
import ast
import os
import os.path as osp

OUT_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                   'clipdense', 'datasets', 'resources', 'ovseg_names')

# file name -> (root key, path inside that checkout, variable, expected count)
SOURCES = {
    'ade150.txt': ('detectron2', 'detectron2/data/datasets/builtin_meta.py',
                   'ADE20K_SEM_SEG_CATEGORIES', 150),
    'ade847.txt': ('ovseg', 'open_vocab_seg/data/datasets/register_ade20k_full.py',
                   'ADE20K_SEM_SEG_FULL_CATEGORIES', 847),
    'pc59.txt': ('ovseg', 'open_vocab_seg/data/datasets/register_pascal_context.py',
                 'PASCALCONTEX59_NAMES', 59),
    'pc459.txt': ('ovseg', 'open_vocab_seg/data/datasets/register_pascal_context.py',
                  'PASCALCONTEX459_NAMES', 459),
    'voc20.txt': ('ovseg', 'open_vocab_seg/data/datasets/register_voc_seg.py',
                  'PASCALVOC20_NAMES', 20),
    'coco_stuff171.txt': ('ovseg', 'open_vocab_seg/data/datasets/register_coco_stuff.py',
                          'COCO_CATEGORIES', 171),
}


def read_names(path: str, variable: str):
    """The names in a module-level ``variable`` of a Python file (a list of
    strings, or of dicts with ``"name"``), in order, stripped."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found: pass the checkout roots '
                                '(--ovseg-root, --detectron2-root)')
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == variable):
            items = node.value.elts
            out = []
            for el in items:
                if isinstance(el, ast.Dict):
                    keys = [k.value for k in el.keys]
                    el = el.values[keys.index('name')]
                out.append(str(ast.literal_eval(el)).strip())
            return out
    raise ValueError(f'{variable} not found in {path}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--ovseg-root', required=True)
    p.add_argument('--detectron2-root', required=True)
    p.add_argument('--out-dir', default=OUT_DIR)
    args = p.parse_args(argv)
    roots = dict(ovseg=args.ovseg_root, detectron2=args.detectron2_root)
    os.makedirs(args.out_dir, exist_ok=True)
    for fname, (root, rel, var, count) in SOURCES.items():
        names = read_names(osp.join(roots[root], rel), var)
        if len(names) != count:
            raise ValueError(f'{var} in {rel} has {len(names)} names, expected {count}')
        with open(osp.join(args.out_dir, fname), 'w', encoding='utf-8') as f:
            f.write(f'# {var} of {rel} ({root} checkout), stripped, one a line\n')
            f.write('\n'.join(names) + '\n')
        print(f'{fname}: {len(names)} names, {sum("," in n for n in names)} with commas')


if __name__ == '__main__':
    main()
