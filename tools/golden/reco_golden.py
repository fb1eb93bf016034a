"""Golden outputs of ReCo's co-segmentation and inference, computed by the
authors' code (Shin, Xie and Albanie, "ReCo: Retrieve and Co-segment for
Zero-shot Transfer", NeurIPS 2022; https://github.com/NoelShin/reco, commit
5c5e1bc, 2023-04-20), for tests/models/test_reco_golden.py.

    python tools/golden/reco_golden.py --reco-root /path/to/NoelShin/reco \
        [--commit 5c5e1bc...]  # for an exported tree without .git

The authors' ``networks/reco.py`` is imported from the checkout at run time
(nothing of it is copied into clipdense). Its heavy parts are replaced:
the image encoder (DeiT-S/16-SIN) and the dense CLIP (RN50x16) by seeded
single-convolution networks (:func:`tiny_networks`, rebuilt by the test from
the stored weights), the OpenAI ``clip`` package (imported by the text
side, never called) by an empty module, prompt engineering by stored unit
text embeddings, and ImageNet retrieval by stored "retrieved" images per
concept. Everything else runs as the authors wrote it: the progressive
context references of ``ReCo.__init__`` (each context co-segmented with the
earlier ones eliminated), ``_cosegment`` with language guidance and context
elimination, the co-segmentation's column slices in
``_get_reference_image_feature``, the ``vegetation`` alias, and
``ReCo.__call__`` with the dense-CLIP text attention.

Writes ``tests/data/golden/reco/reco_golden.safetensors`` (inputs, weights
and outputs, float32; the names and the commit in its metadata).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import types

import torch

# concepts of the fixture (a context concept, an alias and plain targets)
CONTEXTS = ('tree', 'sky', 'building')
TARGETS = ('vegetation', 'car', 'sky', 'road')
K = 3  # images "retrieved" per concept
ARCHIVE = 24  # side of the retrieved images
FEAT_DIM, CLIP_DIM = 16, 12
TEST_SHAPE = (1, 3, 32, 48)
ENC_STRIDE, CLIP_STRIDE = 4, 8


def tiny_networks():
    """Seeded stand-ins: the co-segmentation encoder (stride 4) and the
    dense CLIP (stride 8), both one convolution."""
    torch.manual_seed(0)
    encoder = torch.nn.Conv2d(3, FEAT_DIM, kernel_size=ENC_STRIDE, stride=ENC_STRIDE)
    dense_clip = torch.nn.Conv2d(3, CLIP_DIM, kernel_size=CLIP_STRIDE, stride=CLIP_STRIDE)
    return encoder.eval(), dense_clip.eval()


def fixture_inputs():
    """Retrieved images per concept, text embeddings, the test images and
    the inputs of the unit check of the column slices."""
    g = torch.Generator().manual_seed(1)
    retrieved = [c for c in dict.fromkeys(CONTEXTS + TARGETS) if c != 'vegetation']
    imgs = torch.randn(len(retrieved), K, 3, ARCHIVE, ARCHIVE, generator=g)
    names = list(dict.fromkeys(CONTEXTS + TARGETS))
    text = torch.nn.functional.normalize(torch.randn(len(names), CLIP_DIM, generator=g), dim=1)
    test = torch.randn(*TEST_SHAPE, generator=g)
    unit_feats = torch.randn(5, 8, 3, 4, generator=g)
    unit_weights = torch.rand(5, 3, 4, generator=g)
    return retrieved, imgs, names, text, test, unit_feats, unit_weights


def _import_authors(root):
    if not osp.isfile(osp.join(root, 'networks', 'reco.py')):
        sys.exit(f'{root} has no networks/reco.py: pass the root of a NoelShin/reco checkout')
    sys.path.insert(0, osp.abspath(root))
    sys.modules.setdefault('clip', types.ModuleType('clip'))  # imported, never called
    from networks.reco import ReCo
    return ReCo


def _commit(root, given=None):
    try:
        found = subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        found = None
    if found and given and not found.startswith(given):
        sys.exit(f'{root} is at {found}, not {given}')
    if not (found or given):
        sys.exit(f'{root} is not a git checkout: name its commit with --commit')
    return found or given


class _Index:
    """The authors' index dataset interface: set_category, then [0]."""

    def __init__(self, retrieved, imgs):
        self.by_name = dict(zip(retrieved, imgs))
        self.category = None

    def set_category(self, category):
        self.category = category

    def __getitem__(self, i):
        # the authors retrieve before _cosegment, which returns early for an
        # alias ('vegetation') or a context concept: those images are unused
        imgs = self.by_name.get(self.category)
        if imgs is None:
            imgs = torch.zeros_like(next(iter(self.by_name.values())))
        return dict(imgs=imgs)


@torch.no_grad()
def run(root, commit=None):
    ReCo = _import_authors(root)
    encoder, dense_clip = tiny_networks()
    retrieved, imgs, names, text, test, unit_feats, unit_weights = fixture_inputs()
    text_of = dict(zip(names, text))
    cpu = torch.device('cpu')

    reco = ReCo.__new__(ReCo)  # skip __init__: it loads DeiT, CLIP and pickles
    reco.k = K
    reco.encoder, reco.dense_clip = encoder, dense_clip
    reco.dense_clip_inference = True
    reco.index_dataset = _Index(retrieved, imgs)
    reco.context_elimination = True
    reco.context_categories = list(CONTEXTS)
    reco.text_attention = True
    reco.device = cpu
    reco.visualise = False
    # what ReCo.__init__ does when no pickle exists (context loop first)
    reco.category_to_context_img_feature = {}
    reco.category_to_context_text_feature = {c: text_of[c] for c in CONTEXTS}
    for c in CONTEXTS:
        reco.category_to_context_img_feature[c] = reco._cosegment(
            imgs=reco._retrieve(category=c), category=c,
            text_feature=reco.category_to_context_text_feature[c],
            category_to_context_img_feature=reco.category_to_context_img_feature)
    reco.categories = list(TARGETS)
    reco.category_to_text_feature = {c: text_of[c] for c in TARGETS}
    reco.category_to_img_feature = {c: reco._get_category_img_feature(category=c)
                                    for c in TARGETS}
    scores = reco(test, device=cpu)
    unit_ref, unit_seeds = reco._get_reference_image_feature(
        features=unit_feats, weights=unit_weights, return_seed_features=True)

    out = {
        'encoder.weight': encoder.weight, 'encoder.bias': encoder.bias,
        'dense_clip.weight': dense_clip.weight, 'dense_clip.bias': dense_clip.bias,
        'retrieved_images': imgs, 'text_embeddings': text, 'test_images': test,
        'context_references': torch.stack(
            [reco.category_to_context_img_feature[c] for c in CONTEXTS]),
        'target_references': torch.stack([reco.category_to_img_feature[c] for c in TARGETS]),
        'scores': scores,
        'unit_features': unit_feats, 'unit_weights': unit_weights,
        'unit_reference': unit_ref, 'unit_seeds': unit_seeds,
    }
    meta = dict(commit=_commit(root, commit), enc_stride=ENC_STRIDE, clip_stride=CLIP_STRIDE, contexts=list(CONTEXTS), targets=list(TARGETS),
                retrieved=retrieved, text_names=names, aliases={'vegetation': 'tree'},
                k=K, temperature=10.0)
    return {k: v.detach().float().contiguous() for k, v in out.items()}, meta


def main(argv=None):
    here = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--reco-root', required=True, help='checkout of NoelShin/reco')
    p.add_argument('--out', default=osp.join(here, 'tests/data/golden/reco/reco_golden.safetensors'))
    p.add_argument('--commit', help='the checkout\'s commit, when it is an exported tree '
                   '(no .git); checked against git otherwise')
    a = p.parse_args(argv)
    from safetensors.torch import save_file
    tensors, meta = run(a.reco_root, a.commit)
    os.makedirs(osp.dirname(a.out), exist_ok=True)
    save_file(tensors, a.out, metadata={'meta': json.dumps(meta)})
    size = sum(t.numel() * 4 for t in tensors.values())
    print(f'wrote {a.out} ({len(tensors)} tensors, {size / 1024:.0f} KiB), commit {meta["commit"]}')


if __name__ == '__main__':
    main()
