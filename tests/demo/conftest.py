"""A stand-in for ``make quickstart``'s output: the tiny CLIP
(``clipdense-synth-rn``) with seeded random weights at
``<dir>/work_dirs/quickstart/tiny_clip.pt``, the path the synthetic-world
configs read relative to the working directory."""
import os
import os.path as osp

import pytest


def write_random_tiny_clip(path):
    import open_clip
    import torch

    from clipdense.models.utils.clip_archs import register_clip_archs
    register_clip_archs()
    torch.manual_seed(0)
    model = open_clip.create_model('clipdense-synth-rn', pretrained=None)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(model.state_dict(), path)


@pytest.fixture(scope='module')
def quickstart_dir(tmp_path_factory):
    """A folder holding ``work_dirs/quickstart/tiny_clip.pt`` (random)."""
    work = tmp_path_factory.mktemp('quickstart')
    write_random_tiny_clip(str(work / 'work_dirs' / 'quickstart' / 'tiny_clip.pt'))
    return work
