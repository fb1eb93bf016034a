"""AGD20K affordance grounding test reader (the real dataset's layout)."""
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.dataset import BaseDataset

from clipdense.registry import DATASETS

IMG_SUFFIXES = ('.jpg', '.jpeg', '.png')


@DATASETS.register_module()
class AGD20KDataset(BaseDataset):
    """AGD20K egocentric test images with dense heat-map ground truth::

        <data_root>/<split>/testset/egocentric/<action>/<object>/<name>.jpg
        <data_root>/<split>/testset/GT/<action>/<object>/<name>.png

    ``split`` is 'Seen' or 'Unseen'. The synthetic world writes the same
    tree under ``agd20k/`` (PNG images instead of JPEG). GT maps are uint8,
    0..255; the metrics (KLD, SIM, NSS) normalise per image (methods.md
    Part B section 4.3). Test images without a GT map are skipped, as the
    reference evaluation code does.

    Each sample's info has ``img_path``, ``gt_path``, ``action`` (folder
    name), ``object`` and ``text`` (the action with spaces, e.g.
    'drink with', the prompt of an open-vocabulary affordance model).

    Args:
        data_root (str): the AGD20K root (holding ``Seen``/``Unseen``).
        split (str): 'Seen' or 'Unseen'.
        actions (sequence[str], optional): actions to read; default all.
        **kwargs: the arguments of ``mmengine.dataset.BaseDataset``.
    """

    def __init__(self,
                 data_root: str,
                 *,
                 split: str = 'Seen',
                 actions: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        self.split = split
        self.actions = tuple(actions) if actions else None
        super().__init__(data_root=data_root, **kwargs)

    def _test_dir(self):
        return osp.join(self.data_root, self.split, 'testset')

    def load_data_list(self):
        ego = osp.join(self._test_dir(), 'egocentric')
        gt_root = osp.join(self._test_dir(), 'GT')
        if not osp.isdir(ego):
            raise FileNotFoundError(f'AGD20K layout: {ego} does not exist')
        actions = self.actions or sorted(
            d for d in os.listdir(ego) if osp.isdir(osp.join(ego, d)))
        data_list = []
        for action in actions:
            for obj in sorted(os.listdir(osp.join(ego, action))):
                odir = osp.join(ego, action, obj)
                if not osp.isdir(odir):
                    continue
                for name in sorted(os.listdir(odir)):
                    stem, ext = osp.splitext(name)
                    if ext.lower() not in IMG_SUFFIXES:
                        continue
                    gt = osp.join(gt_root, action, obj, stem + '.png')
                    if not osp.isfile(gt):
                        continue
                    data_list.append(dict(
                        img_path=osp.join(odir, name), gt_path=gt,
                        action=action, object=obj,
                        text=action.replace('_', ' ')))
        self._metainfo['classes'] = tuple(actions)
        return data_list
