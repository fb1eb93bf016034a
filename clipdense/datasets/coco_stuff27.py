"""COCO-Stuff's 171 classes and their 27 coarse super-categories (12 thing
and 15 stuff), the label space of the COCO-Stuff-27 benchmark of IIC (Ji et
al., ICCV 2019), STEGO (Hamilton et al., ICLR 2022) and ReCo (Shin et al.,
NeurIPS 2022).

Three index spaces:

* *182*: the stuffthingmaps of COCO-Stuff 164k (pixel = COCO category id
  - 1, 255 unlabelled; 11 ids of COCO's 2014 list never occur);
* *171*: the classes that occur, in id order (mmseg's ``_labelTrainIds``
  and ReCo's fine vocabulary);
* *27*: the coarse classes of the benchmark, in IIC's order (things first).

The grouping is COCO-Stuff's hierarchy (the ``supercategory`` fields of
COCO's and COCO-Stuff's category lists).
"""
from typing import Dict, List, Tuple

#: the 27 coarse classes, in the benchmark's order
COCO_STUFF_27 = (
    'electronic', 'appliance', 'food things', 'furniture things', 'indoor',
    'kitchen', 'accessory', 'animal', 'outdoor', 'person', 'sports', 'vehicle',
    'ceiling', 'floor', 'food stuff', 'furniture stuff', 'raw material',
    'textile', 'wall', 'window', 'building', 'ground', 'plant', 'sky', 'solid',
    'structural', 'water')

#: COCO category ids (1-based) absent from COCO 2017 and COCO-Stuff 164k
UNUSED_COCO_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)

#: the 171 classes in id order, spelt as ReCo prompts them: COCO-Stuff's
#: names with the hyphens replaced by spaces ('wall-brick' -> 'wall brick')
COCO_STUFF_171 = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush', 'banner', 'blanket', 'branch', 'bridge',
    'building other', 'bush', 'cabinet', 'cage', 'cardboard', 'carpet',
    'ceiling other', 'ceiling tile', 'cloth', 'clothes', 'clouds', 'counter',
    'cupboard', 'curtain', 'desk stuff', 'dirt', 'door stuff', 'fence',
    'floor marble', 'floor other', 'floor stone', 'floor tile', 'floor wood',
    'flower', 'fog', 'food other', 'fruit', 'furniture other', 'grass',
    'gravel', 'ground other', 'hill', 'house', 'leaves', 'light', 'mat',
    'metal', 'mirror stuff', 'moss', 'mountain', 'mud', 'napkin', 'net',
    'paper', 'pavement', 'pillow', 'plant other', 'plastic', 'platform',
    'playingfield', 'railing', 'railroad', 'river', 'road', 'rock', 'roof',
    'rug', 'salad', 'sand', 'sea', 'shelf', 'sky other', 'skyscraper', 'snow',
    'solid other', 'stairs', 'stone', 'straw', 'structural other', 'table',
    'tent', 'textile other', 'towel', 'tree', 'vegetable', 'wall brick',
    'wall concrete', 'wall other', 'wall panel', 'wall stone', 'wall tile',
    'wall wood', 'water other', 'waterdrops', 'window blind', 'window other',
    'wood')

#: coarse class -> its fine classes (COCO-Stuff's super-categories)
COARSE_GROUPS: Dict[str, Tuple[str, ...]] = {
    'electronic': ('tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone'),
    'appliance': ('microwave', 'oven', 'toaster', 'sink', 'refrigerator'),
    'food things': ('banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
                    'hot dog', 'pizza', 'donut', 'cake'),
    'furniture things': ('chair', 'couch', 'potted plant', 'bed', 'dining table',
                         'toilet'),
    'indoor': ('book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
               'toothbrush'),
    'kitchen': ('bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl'),
    'accessory': ('backpack', 'umbrella', 'handbag', 'tie', 'suitcase'),
    'animal': ('bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear',
               'zebra', 'giraffe'),
    'outdoor': ('traffic light', 'fire hydrant', 'stop sign', 'parking meter',
                'bench'),
    'person': ('person', ),
    'sports': ('frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat',
               'baseball glove', 'skateboard', 'surfboard', 'tennis racket'),
    'vehicle': ('bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck',
                'boat'),
    'ceiling': ('ceiling other', 'ceiling tile'),
    'floor': ('carpet', 'floor marble', 'floor other', 'floor stone', 'floor tile',
              'floor wood'),
    'food stuff': ('food other', 'fruit', 'salad', 'vegetable'),
    'furniture stuff': ('cabinet', 'counter', 'cupboard', 'desk stuff', 'door stuff',
                        'furniture other', 'light', 'mirror stuff', 'shelf', 'stairs',
                        'table'),
    'raw material': ('cardboard', 'metal', 'paper', 'plastic'),
    'textile': ('banner', 'blanket', 'cloth', 'clothes', 'curtain', 'mat', 'napkin',
                'pillow', 'rug', 'textile other', 'towel'),
    'wall': ('wall brick', 'wall concrete', 'wall other', 'wall panel', 'wall stone',
             'wall tile', 'wall wood'),
    'window': ('window blind', 'window other'),
    'building': ('bridge', 'building other', 'house', 'roof', 'skyscraper', 'tent'),
    'ground': ('dirt', 'gravel', 'ground other', 'mud', 'pavement', 'platform',
               'playingfield', 'railroad', 'road', 'sand', 'snow'),
    'plant': ('branch', 'bush', 'flower', 'grass', 'leaves', 'moss', 'plant other',
              'straw', 'tree'),
    'sky': ('clouds', 'sky other'),
    'solid': ('hill', 'mountain', 'rock', 'solid other', 'stone', 'wood'),
    'structural': ('cage', 'fence', 'net', 'railing', 'structural other'),
    'water': ('fog', 'river', 'sea', 'water other', 'waterdrops'),
}


def fine171_to_coarse27() -> List[int]:
    """Coarse class of each of the 171 fine classes (in id order)."""
    coarse_of = {fine: COCO_STUFF_27.index(c) for c, fines in COARSE_GROUPS.items()
                 for fine in fines}
    return [coarse_of[name] for name in COCO_STUFF_171]


def stuffthing182_ids() -> List[int]:
    """The 182-space pixel value (COCO id - 1) of each of the 171 classes."""
    return [i for i in range(182) if i + 1 not in UNUSED_COCO_IDS]


def fine182_to_coarse27() -> Dict[int, int]:
    """``{stuffthingmaps pixel value: coarse class}`` for the 171 ids that
    occur (the others, and 255, are unlabelled)."""
    return dict(zip(stuffthing182_ids(), fine171_to_coarse27()))
