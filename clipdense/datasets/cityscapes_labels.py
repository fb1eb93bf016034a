"""The 19 Cityscapes evaluation classes and the label mappings of the
driving datasets used for domain generalization (VLTSeg, Hümmer et al.,
ACCV 2024; the GTA5/SYNTHIA -> Cityscapes/BDD100K/Mapillary and
Cityscapes -> ACDC protocols).

Every source is mapped to the Cityscapes *train ids* (0..18, 255 = ignore),
the label space of mmseg's ``CityscapesDataset`` and ``BDD100KDataset``:

* ``'cityscapes'``: Cityscapes label ids (``*_gtFine_labelIds.png``, ACDC's
  ``*_gt_labelIds.png``) and GTA5's ``labels/*.png`` (GTA5 is annotated
  with the Cityscapes ids, Richter et al., ECCV 2016).
* ``'synthia'``: SYNTHIA RAND-CITYSCAPES class ids (``GT/LABELS/*.png``,
  16-bit, the class id in the first (R) channel), mapped as in the
  dataset's README.txt and the DAFormer/HRDA converters.
* ``'mapillary_v1.2'``: the 66 Mapillary Vistas v1.2 classes
  (``<split>/v1.2/labels/*.png``, ids 0..65, 65 = unlabeled), mapped to
  the 19 classes as the DG literature does (HRDA/MIC converter).
* ``'train_ids'``: files that already hold train ids (BDD100K,
  ``*_labelTrainIds.png``): values 0..18 kept, everything else -> 255.

:func:`to_train_ids` applies a mapping with a look-up table, so any value
that a table does not list becomes 255 (never passes through unchanged).
:func:`read_label` reads a raw label file of any of these formats, and
:func:`convert_dataset` writes ``*_labelTrainIds.png`` files next to (or
beside) the raw ones, as mmseg's Cityscapes converter does, so that the
plain ``LoadAnnotations`` reads every dataset.
"""
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

IGNORE_INDEX = 255

CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
           'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
           'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
           'bicycle')
PALETTE = [[128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156],
           [190, 153, 153], [153, 153, 153], [250, 170, 30], [220, 220, 0],
           [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
           [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100],
           [0, 0, 230], [119, 11, 32]]

# Cityscapes label id -> train id (cityscapesScripts' labels.py; every id
# not listed, including -1 'license plate', is ignored).
CITYSCAPES_ID_TO_TRAIN_ID: Dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}

# SYNTHIA RAND-CITYSCAPES (README.txt): 0 void, 1 sky, 2 building, 3 road,
# 4 sidewalk, 5 fence, 6 vegetation, 7 pole, 8 car, 9 traffic sign,
# 10 pedestrian, 11 bicycle, 12 motorcycle, 13 parking-slot, 14 road-work,
# 15 traffic light, 16 terrain, 17 rider, 18 truck, 19 bus, 20 train,
# 21 wall, 22 lanemarking. Terrain, truck and train are listed but (almost)
# never present, which is why SYNTHIA results are often given on 16 classes.
SYNTHIA_ID_TO_TRAIN_ID: Dict[int, int] = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10,
    10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18}
SYNTHIA_16_CLASSES = tuple(c for c in CLASSES
                           if c not in ('terrain', 'truck', 'train'))

# Mapillary Vistas v1.2 (66 classes; the order of mmseg's
# MapillaryDataset_v1) -> Cityscapes train ids.
MAPILLARY_V12_CLASSES = (
    'Bird', 'Ground Animal', 'Curb', 'Fence', 'Guard Rail', 'Barrier', 'Wall',
    'Bike Lane', 'Crosswalk - Plain', 'Curb Cut', 'Parking', 'Pedestrian Area',
    'Rail Track', 'Road', 'Service Lane', 'Sidewalk', 'Bridge', 'Building',
    'Tunnel', 'Person', 'Bicyclist', 'Motorcyclist', 'Other Rider',
    'Lane Marking - Crosswalk', 'Lane Marking - General', 'Mountain', 'Sand',
    'Sky', 'Snow', 'Terrain', 'Vegetation', 'Water', 'Banner', 'Bench',
    'Bike Rack', 'Billboard', 'Catch Basin', 'CCTV Camera', 'Fire Hydrant',
    'Junction Box', 'Mailbox', 'Manhole', 'Phone Booth', 'Pothole',
    'Street Light', 'Pole', 'Traffic Sign Frame', 'Utility Pole',
    'Traffic Light', 'Traffic Sign (Back)', 'Traffic Sign (Front)',
    'Trash Can', 'Bicycle', 'Boat', 'Bus', 'Car', 'Caravan', 'Motorcycle',
    'On Rails', 'Other Vehicle', 'Trailer', 'Truck', 'Wheeled Slow',
    'Car Mount', 'Ego Vehicle', 'Unlabeled')
_MAPILLARY_BY_NAME = {
    'Road': 'road', 'Lane Marking - General': 'road', 'Manhole': 'road',
    'Curb': 'sidewalk', 'Sidewalk': 'sidewalk', 'Building': 'building',
    'Wall': 'wall', 'Fence': 'fence', 'Pole': 'pole', 'Utility Pole': 'pole',
    'Traffic Light': 'traffic light', 'Traffic Sign (Front)': 'traffic sign',
    'Vegetation': 'vegetation', 'Terrain': 'terrain', 'Sky': 'sky',
    'Person': 'person', 'Bicyclist': 'rider', 'Motorcyclist': 'rider',
    'Other Rider': 'rider', 'Car': 'car', 'Truck': 'truck', 'Bus': 'bus',
    'On Rails': 'train', 'Motorcycle': 'motorcycle', 'Bicycle': 'bicycle'}
MAPILLARY_V12_ID_TO_TRAIN_ID: Dict[int, int] = {
    MAPILLARY_V12_CLASSES.index(m): CLASSES.index(c)
    for m, c in _MAPILLARY_BY_NAME.items()}

MAPPINGS: Dict[str, Optional[Dict[int, int]]] = {
    'cityscapes': CITYSCAPES_ID_TO_TRAIN_ID,
    'gta5': CITYSCAPES_ID_TO_TRAIN_ID,
    'synthia': SYNTHIA_ID_TO_TRAIN_ID,
    'mapillary_v1.2': MAPILLARY_V12_ID_TO_TRAIN_ID,
    'train_ids': {i: i for i in range(len(CLASSES))},
}


def check_mapping(name: str) -> str:
    if name not in MAPPINGS:
        raise ValueError(f'unknown label mapping {name!r}; choose from '
                         f'{sorted(MAPPINGS)}')
    return name


def lookup_table(name: str) -> np.ndarray:
    """A 65536-entry table from raw value to train id (255 elsewhere)."""
    table = np.full(65536, IGNORE_INDEX, dtype=np.uint8)
    for raw, train_id in MAPPINGS[check_mapping(name)].items():
        table[raw] = train_id
    return table


_TABLES: Dict[str, np.ndarray] = {}


def to_train_ids(label: np.ndarray, mapping: str) -> np.ndarray:
    """Map a raw label map ``(H, W)`` (any integer dtype) to train ids.

    Returns:
        np.ndarray: ``(H, W)`` uint8, values in 0..18 or 255.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f'expected a (H, W) label map, got shape {label.shape}; '
                         'read multi-channel files with read_label()')
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f'label maps hold integers, got {label.dtype}')
    if mapping not in _TABLES:
        _TABLES[mapping] = lookup_table(mapping)
    # negative values (e.g. -1 'license plate' stored signed) are ignored
    idx = np.clip(label.astype(np.int64), 0, 65535)
    out = _TABLES[mapping][idx]
    out[label < 0] = IGNORE_INDEX
    return out


def decode_label(data: bytes, mapping: str, name: str = '<bytes>') -> np.ndarray:
    """Decode a raw label file (its bytes) of ``mapping``'s format, not yet
    mapped.

    SYNTHIA's LABELS are 16-bit 3-channel PNGs whose first (R) channel is
    the class id (the second holds instance ids): decoded unchanged with
    OpenCV (BGR order), the class id is the *last* channel there. Other
    formats are single-channel (palette or grey) PNGs, decoded with Pillow
    so that palette images give their indices.
    """
    check_mapping(mapping)
    if mapping == 'synthia':
        import cv2
        label = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if label is None:
            raise ValueError(f'cannot decode {name} as an image')
        if label.ndim == 3:
            label = label[..., -1]
        return label
    import io

    from PIL import Image
    with Image.open(io.BytesIO(data)) as img:
        if img.mode not in ('P', 'L', 'I', 'I;16', 'I;16B', 'I;16L'):
            raise ValueError(
                f'{name}: expected a single-channel (palette or grey) label '
                f'image for the {mapping!r} mapping, got mode {img.mode!r}; '
                'is this a colour visualisation (e.g. *_color.png) instead '
                'of the ids?')
        return np.array(img)


def read_label(path: str, mapping: str) -> np.ndarray:
    """Read a raw label file of ``mapping``'s format (see
    :func:`decode_label`), not yet mapped."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'label file {path} does not exist')
    with open(path, 'rb') as f:
        return decode_label(f.read(), mapping, path)


def write_train_ids(path: str, label: np.ndarray) -> None:
    from PIL import Image
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    Image.fromarray(label.astype(np.uint8)).save(path)


# ---------------------------------------------------------------------------
# Converters: raw label file -> '*_labelTrainIds.png', per dataset layout.

def _walk(root: str, suffix: str, exclude: str = '_labelTrainIds.png'):
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith(suffix) and not f.endswith(exclude):
                yield osp.join(dirpath, f)


def _gta5_pairs(root: str, out_root: Optional[str]):
    src = osp.join(root, 'labels')
    dst = osp.join(out_root or root, 'labels')
    for p in _walk(src, '.png'):
        rel = osp.relpath(p, src)
        yield p, osp.join(dst, rel[:-4] + '_labelTrainIds.png')


def _synthia_pairs(root: str, out_root: Optional[str]):
    src = osp.join(root, 'GT', 'LABELS')
    dst = osp.join(out_root or root, 'GT', 'LABELS')
    for p in _walk(src, '.png'):
        rel = osp.relpath(p, src)
        yield p, osp.join(dst, rel[:-4] + '_labelTrainIds.png')


def _cityscapes_pairs(root: str, out_root: Optional[str]):
    src = osp.join(root, 'gtFine')
    dst = osp.join(out_root or root, 'gtFine')
    for p in _walk(src, '_gtFine_labelIds.png'):
        rel = osp.relpath(p, src)
        yield p, osp.join(
            dst, rel.replace('_gtFine_labelIds.png', '_gtFine_labelTrainIds.png'))


def _acdc_pairs(root: str, out_root: Optional[str]):
    src = osp.join(root, 'gt')
    dst = osp.join(out_root or root, 'gt')
    for p in _walk(src, '_gt_labelIds.png'):
        rel = osp.relpath(p, src)
        yield p, osp.join(
            dst, rel.replace('_gt_labelIds.png', '_gt_labelTrainIds.png'))


def _mapillary_pairs(root: str, out_root: Optional[str]):
    for split in ('training', 'validation'):
        src = osp.join(root, split, 'v1.2', 'labels')
        dst = osp.join(out_root or root, split, 'v1.2', 'labels_cityscapes19')
        for p in _walk(src, '.png'):
            yield p, osp.join(dst, osp.relpath(p, src))


# dataset -> (mapping, (root, out_root) -> iterator of (raw, out) paths)
CONVERTERS: Dict[str, Tuple[str, Callable]] = {
    'gta5': ('gta5', _gta5_pairs),
    'synthia': ('synthia', _synthia_pairs),
    'cityscapes': ('cityscapes', _cityscapes_pairs),
    'acdc': ('cityscapes', _acdc_pairs),
    'mapillary': ('mapillary_v1.2', _mapillary_pairs),
}


def convert_dataset(dataset: str, root: str, out_root: Optional[str] = None,
                    overwrite: bool = False) -> List[str]:
    """Write Cityscapes train-id label files for a raw dataset download.

    Layouts (``root`` is the dataset folder):

    * ``gta5``: ``labels/00001.png`` -> ``labels/00001_labelTrainIds.png``
    * ``synthia`` (RAND-CITYSCAPES): ``GT/LABELS/0000000.png`` ->
      ``GT/LABELS/0000000_labelTrainIds.png``
    * ``cityscapes``: ``gtFine/<split>/<city>/*_gtFine_labelIds.png`` ->
      ``*_gtFine_labelTrainIds.png``
    * ``acdc``: ``gt/<cond>/<split>/<seq>/*_gt_labelIds.png`` ->
      ``*_gt_labelTrainIds.png`` (ACDC ships these already; only needed
      when they are missing)
    * ``mapillary`` (Vistas v1.2 labels of the v1.2 or v2.0 download):
      ``{training,validation}/v1.2/labels/*.png`` ->
      ``{training,validation}/v1.2/labels_cityscapes19/*.png``

    Args:
        dataset (str): one of :data:`CONVERTERS`.
        root (str): the dataset folder.
        out_root (str, optional): write under this folder (same relative
            paths) instead of next to the raw files.
        overwrite (bool): rewrite existing outputs.

    Returns:
        list[str]: the files written.
    """
    if dataset not in CONVERTERS:
        raise ValueError(f'unknown dataset {dataset!r}; choose from '
                         f'{sorted(CONVERTERS)}')
    if not osp.isdir(root):
        raise FileNotFoundError(f'dataset folder {root} does not exist')
    mapping, pairs = CONVERTERS[dataset]
    written = []
    for raw, out in pairs(root, out_root):
        if not overwrite and osp.isfile(out):
            continue
        write_train_ids(out, to_train_ids(read_label(raw, mapping), mapping))
        written.append(out)
    if not written and not any(True for _ in pairs(root, out_root)):
        raise FileNotFoundError(
            f'no raw {dataset} label files found under {root}; see '
            'clipdense.datasets.cityscapes_labels.convert_dataset for the '
            'expected layout')
    return written
