"""Per-method metadata files (``configs/<method>/metafile.yml``), in the
spirit of mmsegmentation's metafiles: what each config is, the paper's
number it targets, the synthetic-world number measured here, and whether
released weights can be converted.

A metafile has one ``Collection`` (the method: paper, code, task, defaults
for its models) and a list of ``Models`` (one per config)::

    Collection:
      Name: MaskCLIP
      Paper: {Title: Extract Free Dense Labels from CLIP, Venue: ECCV 2022,
              URL: https://arxiv.org/abs/2112.01071}
      Code: https://github.com/chongzhou96/MaskCLIP
      Task: semseg            # semseg | detection | anomaly | affordance | clip
      Training-free: true     # no checkpoint needed (weights from `pretrained`)
      Converter: none needed  # how released weights load (default for Models):
                              # a text, or {Script: tools/model_converters/x.py,
                              # Released: what it converts, Usage: command}
    Models:
      - Config: maskclip_vit-b16-openai_voc12-20cls-512x512.py
        Backbone: CLIP ViT-B/16 (OpenAI)
        Dataset: PASCAL VOC 2012 val, 20 classes
        Crop: short side 512
        Schedule: training-free
        Paper: {mIoU: 49.5}                        # the paper's, not ours
        Synthetic:                                 # read from a results file
          File: results/maskclip_synthetic.json
          Key: [results, flat, 'MaskCLIP, chosen setting (x1 whole, caption-grammar)', mIoU]
          Metric: mIoU, flat val

A ``Model`` inherits ``Task``, ``Training-free`` and ``Converter`` from the
collection unless it sets them. ``Synthetic.Key`` walks the JSON: a string
is a key, an integer a list index, a mapping selects the first list item
whose fields equal it. :func:`load_metafiles` checks every metafile and
raises ``ValueError`` naming the file and the problem.
"""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional

TASKS = ('semseg', 'detection', 'anomaly', 'affordance', 'clip')
MODEL_KEYS = {'Config', 'Name', 'Backbone', 'Dataset', 'Crop', 'Schedule', 'Paper',
              'Synthetic', 'Task', 'Training-free', 'Converter', 'Notes'}
REQUIRED_MODEL_KEYS = ('Config', 'Backbone', 'Dataset', 'Crop', 'Schedule')


def repo_root() -> str:
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _bad(path, msg):
    return ValueError(f'{path}: {msg}')


def read_metafile(path: str) -> Dict:
    """One metafile, checked; ``Models`` entries get ``Config`` as a path
    relative to the repository root and the collection's defaults."""
    import yaml
    with open(path, encoding='utf-8') as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise _bad(path, f'is not valid YAML: {e}') from e
    if not isinstance(data, dict) or 'Collection' not in data or 'Models' not in data:
        raise _bad(path, 'needs a "Collection" mapping and a "Models" list')
    coll = data['Collection']
    for key in ('Name', 'Task'):
        if key not in coll:
            raise _bad(path, f'Collection has no {key!r}')
    if coll['Task'] not in TASKS:
        raise _bad(path, f'Collection Task {coll["Task"]!r} is not one of {TASKS}')
    folder = osp.dirname(path)
    rel_folder = osp.relpath(folder, repo_root())
    models = []
    for i, m in enumerate(data['Models'] or []):
        if not isinstance(m, dict):
            raise _bad(path, f'Models[{i}] is not a mapping')
        unknown = set(m) - MODEL_KEYS
        if unknown:
            raise _bad(path, f'Models[{i}] has unknown keys {sorted(unknown)} '
                       f'(allowed: {sorted(MODEL_KEYS)})')
        missing = [k for k in REQUIRED_MODEL_KEYS if k not in m]
        if missing:
            raise _bad(path, f'Models[{i}] ({m.get("Config")}) lacks {missing}')
        cfg = osp.join(rel_folder, m['Config'])
        if not osp.isfile(osp.join(repo_root(), cfg)):
            raise _bad(path, f'Models[{i}]: config {cfg} does not exist')
        entry = dict(m)
        entry['Config'] = cfg.replace(osp.sep, '/')
        entry['Name'] = m.get('Name') or osp.splitext(osp.basename(cfg))[0]
        entry['Collection'] = coll['Name']
        for key in ('Task', 'Training-free', 'Converter'):
            entry.setdefault(key, coll.get(key))
        if entry['Task'] not in TASKS:
            raise _bad(path, f'Models[{i}] Task {entry["Task"]!r} is not one of {TASKS}')
        entry['Training-free'] = bool(entry.get('Training-free'))
        conv = entry.get('Converter')
        if isinstance(conv, dict) and not {'Script', 'Released'} <= set(conv):
            raise _bad(path, f'Models[{i}] Converter needs Script and Released '
                       '(or is a plain text)')
        if 'Synthetic' in entry:
            syn = entry['Synthetic']
            if not isinstance(syn, dict) or not {'File', 'Key', 'Metric'} <= set(syn):
                raise _bad(path, f'Models[{i}] Synthetic needs File, Key and Metric')
        models.append(entry)
    return dict(Collection=dict(coll, Folder=rel_folder.replace(osp.sep, '/'),
                                Metafile=osp.relpath(path, repo_root())),
                Models=models)


def metafile_paths(root: Optional[str] = None) -> List[str]:
    root = root or repo_root()
    return sorted(glob.glob(osp.join(root, 'configs', '*', 'metafile.yml')))


def load_metafiles(root: Optional[str] = None) -> List[Dict]:
    """Every ``configs/*/metafile.yml``, sorted by folder."""
    return [read_metafile(p) for p in metafile_paths(root)]


def all_models(root: Optional[str] = None) -> List[Dict]:
    return [m for meta in load_metafiles(root) for m in meta['Models']]


def synthetic_value(spec: Dict, root: Optional[str] = None) -> Optional[float]:
    """The number ``spec`` (``File``, ``Key``) points to, or None when the
    results file does not exist yet; a key that does not resolve raises
    ``KeyError`` naming the file (a renamed row must not vanish silently)."""
    path = osp.join(root or repo_root(), spec['File'])
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        node = json.load(f)
    for step in spec['Key']:
        if isinstance(step, dict):
            hits = [x for x in node if isinstance(x, dict)
                    and all(x.get(k) == v for k, v in step.items())]
            if not hits:
                raise KeyError(f'{spec["File"]}: no list item with {step}')
            node = hits[0]
        elif isinstance(step, int):
            node = node[step]
        else:
            if not isinstance(node, dict) or step not in node:
                raise KeyError(f'{spec["File"]}: no key {step!r} in {spec["Key"]}')
            node = node[step]
    return float(node)
