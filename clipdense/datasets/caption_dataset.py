"""Image-caption pairs for contrastive CLIP training (JSON lines)."""
import json
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset

from clipdense.registry import DATASETS


@DATASETS.register_module()
class CaptionDataset(BaseDataset):
    """Image-caption pairs from a JSON-lines file.

    Each line is ``{"image": "<path relative to data_root>", "caption": "..."}``
    (``"captions": [...]`` is also accepted; one sample per caption). This is
    the format the synthetic world writes and the one of most caption dumps.

    Args:
        ann_file (str): the ``.jsonl`` file (relative to ``data_root``).
        data_root (str): folder that image paths are relative to.
        pipeline (list): transforms; end with ``PackCaptionInputs``.
        keep_fields (sequence[str]): other keys of a record to copy into
            its samples, for transforms that read them (e.g. ``objects`` for
            :class:`NounCaption`). A listed key that a record lacks is left
            out of that record's samples. A kept ``seg_map`` (a label map's
            path relative to ``data_root``, as the rich-caption corpus
            writes it) also sets the sample's ``seg_map_path``, which
            :class:`LoadCaptionSegMap` reads. A record that names its
            label values itself (``seg_classes``: the corpus's anomaly
            images since version 4) has its map read only when
            ``seg_classes`` is kept too; otherwise its samples carry no
            label map, as that record had none before (a config written for
            version 3 trains the same on version 4).
    """
    METAINFO = dict()

    def __init__(self, *args, keep_fields=(), **kwargs):
        if isinstance(keep_fields, str):
            keep_fields = (keep_fields, )
        self.keep_fields = tuple(keep_fields)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'caption file {self.ann_file} not found; expected JSON '
                'lines with "image" and "caption" keys')
        root = self.data_root or ''
        data_list = []
        with open(self.ann_file, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                    image = rec['image']
                    caps = rec['captions'] if 'captions' in rec else [
                        rec['caption']
                    ]
                except (json.JSONDecodeError, KeyError) as err:
                    raise ValueError(
                        f'{self.ann_file}:{lineno}: expected a JSON object '
                        f'with "image" and "caption" ({err})') from None
                extra = {k: rec[k] for k in self.keep_fields if k in rec}
                if 'seg_map' in extra and 'seg_classes' in rec and \
                        'seg_classes' not in extra:
                    del extra['seg_map']  # its values' names not kept
                if 'seg_map' in extra:
                    extra['seg_map_path'] = osp.join(root, extra['seg_map'])
                for cap in caps:
                    data_list.append(
                        dict(img_path=osp.join(root, image), caption=cap,
                             **extra))
        if not data_list:
            raise ValueError(f'{self.ann_file} holds no image-caption pairs')
        return data_list
