"""clipdense's OVSeg against golden outputs of the authors' code (masked
crops, mask prompts, the ensemble), written by
``python tools/golden/ovseg_golden.py --ovseg-root PATH`` from
facebookresearch/ov-seg (commit in tests/data/golden/ovseg/meta.json)."""
import os.path as osp

import pytest
import torch

from clipdense.testing import register_tiny_models

register_tiny_models()

GOLDEN = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'golden', 'ovseg')


def _load(name):
    from safetensors.torch import load_file
    path = osp.join(GOLDEN, f'{name}.safetensors')
    assert osp.isfile(path), f'{path} missing: run tools/golden/ovseg_golden.py'
    return load_file(path)


def test_golden_masked_crops():
    """Threshold, tight box, CLIP-mean fill, bicubic squash to 224, CLIP
    normalisation and nearest-resized crop masks as the authors'
    ``MaskFormerClipAdapter._preprocess_image``."""
    from clipdense.models.region_classifiers import CLIP_MEAN, CLIP_STD, crop_with_masks
    g = _load('crops')
    stride = int(g['stride'])
    binary = g['probs'] > float(g['mask_thr'])
    fill = tuple(255 * m for m in CLIP_MEAN)
    crops, cmasks, valid = crop_with_masks(g['image'], binary, 224, fill=fill, clamp=False)
    assert torch.equal(valid, g['valid'])
    assert not valid.all()  # the fixture has an empty proposal
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1) * 255
    norm = (crops - mean) / std
    assert torch.allclose(norm[:, :, ::stride, ::stride], g['regions_sampled'], atol=1e-4)
    assert torch.allclose(norm.double().sum(dim=(1, 2, 3)), g['regions_sum'], rtol=1e-5,
                          atol=1e-2)
    assert torch.allclose(crops.double().sum(dim=(1, 2, 3)), g['unnorm_regions_sum'],
                          rtol=1e-5, atol=1.0)
    assert torch.equal(cmasks[:, ::2, ::2].to(torch.uint8), g['region_masks_sampled'])


def test_golden_mask_prompts():
    """The authors' ``VisionTransformer`` with mask prompts (depth 3) vs
    ``MaskedCropCLIP`` with the same weights and prompts."""
    from clipdense.models.region_classifiers import MaskedCropCLIP
    g = _load('mpt')
    depth = int(g['prompt_depth'])
    m = MaskedCropCLIP('clipdense-tiny-vit16', pretrained=None, prompt_depth=depth,
                       tower_cfg=dict(quick_gelu=True))
    weights = {k[len('weight.'):]: v for k, v in g.items() if k.startswith('weight.')}
    prompts = weights.pop('mask_embedding')
    missing, unexpected = m.tower.visual.load_state_dict(weights, strict=False)
    assert not unexpected and not [k for k in missing if 'attn_mask' not in k], \
        (missing, unexpected)
    m.load_prompts(prompts)
    m.eval()
    x = g['inputs']  # already CLIP-normalised
    with torch.no_grad():
        emb = m._mpt_forward(x, g['masks'].bool())
        plain = m.tower(x)[-1]['global']
    assert torch.allclose(emb, g['embed_prompts'], atol=1e-4), (emb - g['embed_prompts']).abs().max()
    assert torch.allclose(plain, g['embed_plain'], atol=1e-4)
    # the prompts act where whole patches are background, and only there
    assert not torch.allclose(g['embed_prompts'][0], g['embed_plain'][0], atol=1e-3)
    assert torch.allclose(g['embed_prompts'][2], g['embed_plain'][2], atol=1e-5)


@pytest.mark.parametrize('lam', [0.7, 0.6])
def test_golden_ensemble(lam):
    """``OVSeg.semantic_inference``: p_mf^(1-l) * p_clip^l, p_clip = 1 for
    empty masks, S = sum_q p_q sigmoid(m_q)."""
    from clipdense.models.decode_heads.ovseg_head import ovseg_ensemble
    g = _load('ensemble')
    valid = g['valid']
    clip = torch.zeros(valid.shape[0], g['clip_logits'].shape[1])
    clip[valid] = g['clip_logits']
    p = ovseg_ensemble(g['mask_cls'], clip, lam, valid)
    semseg = torch.einsum('qc,qhw->chw', p, g['mask_pred'].sigmoid())
    assert torch.allclose(semseg, g[f'semseg_{int(lam * 100)}'], atol=1e-5)
