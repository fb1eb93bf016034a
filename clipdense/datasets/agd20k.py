"""AGD20K affordance grounding test reader (the real dataset's layout)."""
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.dataset import BaseDataset

from clipdense.registry import DATASETS

IMG_SUFFIXES = ('.jpg', '.jpeg', '.png')
SPLITS = ('Seen', 'Unseen')
# The affordance classes of the real test splits (AGD20K, Luo et al. CVPR
# 2022; the lists of the reference evaluation code): 36 in Seen, 25 in
# Unseen (whose test objects are not among the training objects).
SEEN_ACTIONS = (
    'beat', 'boxing', 'brush_with', 'carry', 'catch', 'cut', 'cut_with',
    'drag', 'drink_with', 'eat', 'hit', 'hold', 'jump', 'kick', 'lie_on',
    'lift', 'look_out', 'open', 'pack', 'peel', 'pick_up', 'pour', 'push',
    'ride', 'sip', 'sit_on', 'stick', 'stir', 'swing', 'take_photo',
    'talk_on', 'text_on', 'throw', 'type_on', 'wash', 'write')
UNSEEN_ACTIONS = (
    'carry', 'catch', 'cut', 'cut_with', 'drink_with', 'eat', 'hit', 'hold',
    'jump', 'kick', 'lie_on', 'open', 'peel', 'pick_up', 'pour', 'push',
    'ride', 'sip', 'sit_on', 'stick', 'swing', 'take_photo', 'throw',
    'type_on', 'wash')


@DATASETS.register_module()
class AGD20KDataset(BaseDataset):
    """AGD20K egocentric test images with dense heat-map ground truth::

        <data_root>/<split>/testset/egocentric/<action>/<object>/<name>.jpg
        <data_root>/<split>/testset/GT/<action>/<object>/<name>.png

    ``split`` is 'Seen' or 'Unseen'; both splits of the real dataset have
    this layout (``test_dir='testsetv2'`` reads the re-annotated test set of
    the Cross-View-AG extension, same layout). ``SEEN_ACTIONS`` /
    ``UNSEEN_ACTIONS`` list the real splits' 36 / 25 affordances. The
    synthetic world writes the Seen tree under ``agd20k/`` (PNG images
    instead of JPEG). GT maps are uint8,
    0..255; the metrics (KLD, SIM, NSS) normalise per image (methods.md
    Part B section 4.3). Test images without a GT map are skipped, as the
    reference evaluation code does.

    Each sample's info has ``img_path``, ``gt_path``, ``action`` (folder
    name), ``object`` and ``text`` (the action with spaces, e.g.
    'drink with', the prompt of an open-vocabulary affordance model; or the
    phrasing given in ``action_prompts``).

    Args:
        data_root (str): the AGD20K root (holding ``Seen``/``Unseen``).
        split (str): 'Seen' or 'Unseen'.
        actions (sequence[str], optional): actions to read; default all
            action folders present.
        test_dir (str): the test folder inside the split (``'testset'``;
            ``'testsetv2'`` for the Cross-View-AG extension's test set).
        action_prompts (dict, optional): action folder name -> prompt text
            (e.g. ``{'hold': 'holding'}``); other actions keep the default.
        **kwargs: the arguments of ``mmengine.dataset.BaseDataset``.
    """

    def __init__(self,
                 data_root: str,
                 *,
                 split: str = 'Seen',
                 actions: Optional[Sequence[str]] = None,
                 test_dir: str = 'testset',
                 action_prompts: Optional[dict] = None,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f"AGD20K split must be one of {SPLITS} (case as in "
                             f"the dataset's folders), got {split!r}")
        self.split = split
        self.actions = tuple(actions) if actions else None
        self.test_dir = test_dir
        self.action_prompts = dict(action_prompts or {})
        empty = [a for a, t in self.action_prompts.items() if not str(t).strip()]
        if empty:
            raise ValueError(f'action_prompts has empty prompts for {empty}')
        super().__init__(data_root=data_root, **kwargs)

    def _test_dir(self):
        return osp.join(self.data_root, self.split, self.test_dir)

    def load_data_list(self):
        ego = osp.join(self._test_dir(), 'egocentric')
        gt_root = osp.join(self._test_dir(), 'GT')
        if not osp.isdir(ego):
            raise FileNotFoundError(
                f'AGD20K layout: {ego} does not exist; expected '
                f'<data_root>/{self.split}/{self.test_dir}/egocentric/<action>/'
                '<object>/<image> and .../GT/<action>/<object>/<image>.png')
        if not osp.isdir(gt_root):
            raise FileNotFoundError(f'AGD20K layout: {gt_root} (the GT heat maps) '
                                    'does not exist')
        present = sorted(d for d in os.listdir(ego) if osp.isdir(osp.join(ego, d)))
        if self.actions:
            missing = [a for a in self.actions if a not in present]
            if missing:
                raise ValueError(f'actions {missing} have no folder in {ego} '
                                 f'(present: {present})')
        actions = self.actions or present
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
                        text=self.action_prompts.get(
                            action, action.replace('_', ' '))))
        self._metainfo['classes'] = tuple(actions)
        return data_list
