"""clipdense's ReCo against golden outputs of the authors' code.

The fixture ``tests/data/golden/reco/reco_golden.safetensors`` was written by
``python tools/golden/reco_golden.py --reco-root <NoelShin/reco checkout>``
(commit 5c5e1bc): the authors' ``networks/reco.py`` run with seeded
one-convolution networks in place of DeiT-S/16-SIN and the RN50x16 dense
CLIP, stored text embeddings in place of CLIP prompt engineering, and stored
"retrieved" images per concept (see the script's docstring). Here the same
networks are rebuilt from the stored weights inside clipdense's ``ReCo``
segmentor (retrieval and image loading answered from the fixture) and its
references and scores must match the authors' with the paper configs'
settings (their column slices, progressive context elimination).
"""
import json
import os.path as osp

import pytest
import torch

from clipdense.registry import MODELS

FIXTURE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                   'data', 'golden', 'reco', 'reco_golden.safetensors')


def _load():
    from safetensors import safe_open
    with safe_open(FIXTURE, framework='pt') as f:
        meta = json.loads(f.metadata()['meta'])
        return {k: f.get_tensor(k) for k in f.keys()}, meta


@MODELS.register_module(force=True)
class GoldenConv(torch.nn.Module):
    """One convolution; ``joint=True`` returns it as a joint-space dict
    (the CLIP backbone's ``value`` output)."""

    def __init__(self, cin=3, cout=16, kernel=8, joint=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, kernel, stride=kernel)
        self.joint = joint

    def forward(self, x):
        y = self.conv(x)
        return [dict(value=y)] if self.joint else (y, )


class _Text(torch.nn.Module):
    """Stored unit text embeddings by name (the text encoder's interface)."""

    templates = ('{}', )

    def __init__(self, names, emb):
        super().__init__()
        self.table = dict(zip(names, emb))
        self.register_buffer('emb', emb)
        self.embed_dim = emb.shape[1]

    def forward(self, names):
        return torch.stack([self.table[n] for n in names])

    def weights_key(self):
        return (self.emb.data_ptr(), )


class _Hit:
    def __init__(self, paths):
        self.paths = paths


class _Index:
    cache_file = None

    def __init__(self, k):
        self.k = k

    def retrieve(self, concepts, k):
        assert k == self.k
        return [_Hit([f'{c}/{i}' for i in range(k)]) for c in concepts]


def _reco(g, meta, **head):
    from clipdense.models.reco import ReCo  # noqa: F401  (registers ReCo)
    text = _Text(meta['text_names'], g['text_embeddings'])
    cfg = dict(
        type='ReCo',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=None, std=None,
                               bgr_to_rgb=False),
        clip_backbone=dict(type='GoldenConv', cout=12, kernel=meta['clip_stride'], joint=True),
        dense_encoder=dict(type='GoldenConv', cout=16, kernel=meta['enc_stride']),
        dense_feature=0, clip_feature='value',
        decode_head=dict(type='ReCoHead', text_encoder=text,
                         vocabulary=list(meta['targets']), k=meta['k'],
                         context_concepts=list(meta['contexts']),
                         concept_aliases=meta['aliases'],
                         text_attention_temperature=meta['temperature'], **head),
        index=dict(folder='unused'))
    model = MODELS.build(cfg).eval()
    model.dense_encoder.conv.load_state_dict(
        dict(weight=g['encoder.weight'], bias=g['encoder.bias']))
    model.clip_backbone.conv.load_state_dict(
        dict(weight=g['dense_clip.weight'], bias=g['dense_clip.bias']))
    images = dict(zip(meta['retrieved'], g['retrieved_images']))
    model._index = _Index(meta['k'])
    model._load_archive = lambda paths: torch.stack(
        [images[p.split('/')[0]][int(p.split('/')[1])] for p in paths])
    return model


def test_golden_fixture_present_and_from_the_authors():
    g, meta = _load()
    assert meta['commit'].startswith('5c5e1bc')
    assert g['scores'].shape == (1, len(meta['targets']), 32, 48)


def test_golden_column_slices():
    """``reference_embedding(column_slicing='reference_code')`` is the
    authors' ``_get_reference_image_feature`` (seeds and reference)."""
    from clipdense.models.reco import reference_embedding
    g, _ = _load()
    ref, seeds, _ = reference_embedding(g['unit_features'], g['unit_weights'],
                                        column_slicing='reference_code')
    torch.testing.assert_close(ref, g['unit_reference'], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(seeds, g['unit_seeds'], atol=1e-6, rtol=1e-5)
    fixed, _, _ = reference_embedding(g['unit_features'], g['unit_weights'],
                                      column_slicing='per_image')
    assert not torch.allclose(fixed, g['unit_reference'], atol=1e-4)


def test_golden_references_and_scores():
    """Context references (progressive), target references (alias,
    context-as-target, context elimination) and the final scores."""
    g, meta = _load()
    model = _reco(g, meta)  # the defaults are the authors' behaviour
    with torch.no_grad():
        refs = model.references()
        scores = model(g['test_images'], mode='tensor')
        ctx, seen = [], {}
        for c in meta['contexts']:
            ctx.append(model._reference(c, dict(seen)))
            seen[c] = ctx[-1]
    torch.testing.assert_close(torch.stack(ctx), g['context_references'], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(refs, g['target_references'], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scores, g['scores'], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('switch', [dict(column_slicing='per_image'),
                                    dict(progressive_context_elimination=False)])
def test_golden_clipdense_switches_change_the_references(switch):
    g, meta = _load()
    model = _reco(g, meta, **switch)
    with torch.no_grad():
        refs = model.references()
    assert not torch.allclose(refs, g['target_references'], atol=1e-4)
