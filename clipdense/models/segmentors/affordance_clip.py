"""AffordanceCLIP (Cuttano, Rosi, Trivigno, Averta, "What does CLIP know
about peeling a banana?", CVPR 2024 Workshop MAR, arXiv 2404.12015)."""
import hashlib
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from torch import nn

from clipdense.registry import MODELS
from ..open_vocab import build_text_encoder
from ..utils.templates import get_templates
from ..utils.text_cache import TextEmbeddingCache

# Action-prompt templates. The paper's template is not public (methods.md
# Part B 4.2); these phrase an action as the part of an object one acts
# with, the way referring expressions name parts. A config option
# (``prompt_templates``).
AFFORDANCE_TEMPLATES: Tuple[str, ...] = (
    '{}',
    'the part to {}',
    'the part of the object used to {}',
    'where to {} the object',
)
HEATMAP_SOURCES = ('head', 'clip_dense', 'clip_value')


def _check_prompts(prompts) -> List[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    if prompts is None or len(prompts) == 0:
        raise ValueError('no prompt given: give at least one action, e.g. "hold"')
    out = []
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f'prompt #{i} is a {type(p).__name__}, not a string')
        if not p.strip():
            raise ValueError(f'prompt #{i} is empty: give an action or a referring '
                             'expression, e.g. "hold" or "the handle of the mug"')
        out.append(p.strip())
    return out


@MODELS.register_module()
class AffordanceCLIP(BaseSegmentor):
    """Frozen CLIP image and text towers with a trained text-conditioned
    pyramid (:class:`AffordanceHead`) producing a heat map per prompt.

    Training (``mode='loss'``): each data sample carries a referring
    expression (metainfo ``text_key``, default ``'text'``) and its binary
    mask (``gt_sem_seg``, 0/1). The expression is encoded by the frozen
    text tower (as written, or through ``train_templates``), the image by
    the frozen ResNet tower (multi-level maps plus the attention-pooled
    global embedding), and only the head learns, with a per-pixel
    BCE + dice pixel-text objective. No affordance label is used.

    Inference (``mode='predict'``): the prompt of each sample (its
    ``text_key``: a string, or a list for several prompts) is put through
    ``prompt_templates`` (prompt ensembling in :class:`OpenCLIPTextEncoder`,
    cached per prompt set; comma-separated synonyms are averaged) and the
    head returns a score map per prompt. Results: ``seg_logits`` (logits,
    ``(K, H, W)`` at the original image size), ``pred_heatmap`` (the heat
    map: sigmoid of the logits for the head, the raw cosine for the CLIP
    baselines) and ``pred_sem_seg`` (``pred_heatmap > threshold`` for the
    head's first prompt). :meth:`predict_prompts` runs several prompts on a
    batch of images in one call.

    ``test_cfg.heatmap`` selects the map (the untrained baselines need the
    backbone's ``joint_outputs`` to contain the key):

    * ``'head'``: the trained head (default);
    * ``'clip_dense'``: cosine of DenseCLIP's per-pixel attention-pooled
      embeddings with the prompt (frozen CLIP, nothing trained);
    * ``'clip_value'``: the same with MaskCLIP's value-path embeddings.

    Args:
        backbone (dict): an :class:`OpenCLIPResNet` config with
            ``joint_outputs`` containing ``'global'`` (when the head uses
            it); its ``out_indices`` are the pyramid's levels. An
            :class:`OpenCLIPViT` works too (our variant; the paper uses
            ResNets): with ``pyramid=False`` its taps after the blocks in
            ``out_indices`` are the levels, all at the patch stride, fused
            by the head as the ResNet stages are. With ``freeze_clip`` the
            backbone may not add trainable layers of its own (the ViT's
            ``pyramid=True``): they would stay frozen at their random
            initialisation.
        text_encoder (dict): an :class:`OpenCLIPTextEncoder` config of the
            same CLIP.
        decode_head (dict): an :class:`AffordanceHead` config;
            ``in_channels`` and ``embed_dim`` default to the backbone's.
        prompt_templates (str | Sequence[str]): templates for prompts at
            inference (a template-set name or a list).
        train_templates (str | Sequence[str], optional): templates for the
            referring expressions in training; ``None``: the expression as
            written.
        text_key (str): metainfo key of the text of a sample.
        freeze_clip (bool): keep both CLIP towers frozen (the method's
            setting); their parameters get ``requires_grad=False`` and stay
            in eval mode. ``False`` leaves the towers to their own
            ``freeze`` settings (referring expressions are still encoded
            without gradient).
        text_cache_size (int): prompt / expression embeddings kept (keyed
            by the text tower's weights, so loading a checkpoint invalidates
            them).
        feature_cache_size (int): images whose frozen-tower outputs are
            kept (see :meth:`extract_feat`); 0 (default) keeps none. For
            small fixed datasets without augmentation (the synthetic world)
            it removes the tower from all epochs but the first.
        train_cfg, test_cfg (dict, optional): ``test_cfg`` keys:
            ``heatmap`` (see above), ``threshold`` (0.5).
        data_preprocessor (dict, optional): a ``SegDataPreProcessor``.
        init_cfg (dict, optional): mm init config.
    """

    def __init__(self,
                 backbone: dict,
                 text_encoder: Union[dict, nn.Module],
                 decode_head: dict,
                 *,
                 prompt_templates: Union[str, Sequence[str]] = AFFORDANCE_TEMPLATES,
                 train_templates: Union[None, str, Sequence[str]] = None,
                 text_key: str = 'text',
                 freeze_clip: bool = True,
                 text_cache_size: int = 200000,
                 feature_cache_size: int = 0,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.text_encoder = build_text_encoder(text_encoder)
        for attr in ('out_channels', 'embed_dim'):
            if not hasattr(self.backbone, attr):
                raise TypeError(f'AffordanceCLIP needs an OpenCLIPResNet- or '
                                f'OpenCLIPViT-like backbone (with {attr}); got '
                                f'{type(self.backbone).__name__}')
        D = int(self.backbone.embed_dim)
        if int(self.text_encoder.embed_dim) != D:
            raise ValueError(f'the text encoder ({self.text_encoder.embed_dim}-d) and '
                             f'the backbone ({D}-d) are not the same CLIP')
        head = dict(decode_head)
        head.setdefault('in_channels', list(self.backbone.out_channels))
        head.setdefault('embed_dim', D)
        if list(head['in_channels']) != list(self.backbone.out_channels):
            raise ValueError(f"decode_head.in_channels={list(head['in_channels'])} but "
                             f'the backbone gives {list(self.backbone.out_channels)}')
        if int(head['embed_dim']) != D:
            raise ValueError(f"decode_head.embed_dim={head['embed_dim']} but CLIP's "
                             f'joint space has {D} dimensions')
        self.decode_head = MODELS.build(head)
        joint = tuple(getattr(self.backbone, 'joint_outputs', ()))
        if getattr(self.decode_head, 'use_global', False) and 'global' not in joint:
            raise ValueError("the head uses the global image embedding: build the "
                             "backbone with joint_outputs containing 'global' (or set "
                             'decode_head.use_global=False)')
        self.prompt_templates = get_templates(prompt_templates)
        self.train_templates = None if train_templates is None \
            else get_templates(train_templates)
        self.text_key = text_key
        self.freeze_clip = bool(freeze_clip)
        self.text_cache_size = int(text_cache_size)
        self.feature_cache_size = int(feature_cache_size)
        self._feat_cache: 'OrderedDict[str, tuple]' = OrderedDict()
        self._text_cache = TextEmbeddingCache(self.text_cache_size)
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})
        self._check_test_cfg()
        if self.freeze_clip:
            # layers clipdense adds to the tower (a ViT's feature pyramid)
            # are randomly initialised: frozen with the tower, they would
            # never learn (and the feature cache would keep their outputs)
            new_modules = getattr(self.backbone, '_new_modules', lambda: [])()
            added = [type(m).__name__ for m in new_modules
                     if m is not None and any(True for _ in m.parameters())]
            if added:
                raise ValueError(
                    f'freeze_clip=True would freeze the randomly initialised '
                    f'{", ".join(added)} the backbone adds to the CLIP tower; build '
                    'it without (OpenCLIPViT: pyramid=False, the head fuses the '
                    'taps) or set freeze_clip=False')
            for p in list(self.backbone.parameters()) + \
                    list(self.text_encoder.parameters()):
                p.requires_grad_(False)
        self.align_corners = self.decode_head.align_corners

    # ------------------------------------------------------------------
    def _check_test_cfg(self):
        src = self.test_cfg.get('heatmap', 'head')
        if src not in HEATMAP_SOURCES:
            raise ValueError(f'test_cfg.heatmap must be one of {HEATMAP_SOURCES}, '
                             f'got {src!r}')
        if src != 'head':
            key = src.split('_', 1)[1]
            if key not in tuple(getattr(self.backbone, 'joint_outputs', ())):
                raise ValueError(f"test_cfg.heatmap='{src}' needs '{key}' in the "
                                 "backbone's joint_outputs")

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_clip:
            # frozen towers keep BN statistics and dropout fixed
            self.backbone.eval()
            self.text_encoder.eval()
        return self

    @property
    def clip_frozen(self) -> bool:
        return self.freeze_clip

    # ------------------------------------------------------------------
    # text
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """``(K, D)`` L2-normalised embeddings of action prompts through
        ``prompt_templates`` (the text encoder's prompt ensembling; a comma
        inside a prompt separates synonyms, averaged). Each prompt is
        encoded once and cached (frozen towers)."""
        prompts = _check_prompts(prompts)
        tmpl = self.prompt_templates
        # the encoder treats names equal up to case/whitespace as one class
        wk = self.text_encoder.weights_key()  # loading new weights invalidates
        keys = [(wk, tmpl, re.sub(r'\s+', ' ', p.lower())) for p in prompts]
        if not self.freeze_clip:  # a trainable text tower: no cache
            unique = OrderedDict()
            for p, k in zip(prompts, keys):
                unique.setdefault(k, p)
            emb = self.text_encoder(list(unique.values()), templates=tmpl)
            pos = {k: i for i, k in enumerate(unique)}
            return emb[[pos[k] for k in keys]]
        todo = OrderedDict()
        for p, k in zip(prompts, keys):
            if k not in self._text_cache:
                todo.setdefault(k, p)
        if todo:
            with torch.no_grad():
                emb = self.text_encoder(list(todo.values()), templates=tmpl)
            for k, e in zip(todo, emb):
                self._text_cache.put(k, e, trim=False)
        return self._stack_cached(keys)

    def _stack_cached(self, keys) -> torch.Tensor:
        out = torch.stack([self._text_cache.lookup(k) for k in keys])
        self._text_cache.trim()  # after the batch: it may hold more than the cache
        return out

    def encode_sentences(self, sentences: Sequence[str]) -> torch.Tensor:
        """``(N, D)`` L2-normalised embeddings of referring expressions, as
        written (or through ``train_templates``); cached per expression."""
        sentences = _check_prompts(sentences)
        tmpl = self.train_templates or ('{}', )
        enc = self.text_encoder
        wk = ('sentence', enc.weights_key())
        todo = [s for s in OrderedDict.fromkeys(sentences)
                if (wk, tmpl, s) not in self._text_cache]
        if todo:
            prompts = [t.format(s) for s in todo for t in tmpl]
            enc.check_truncation(prompts, enc.context_length, what='expressions')
            with torch.no_grad():
                feats = torch.cat([
                    enc.encode_text(enc.tokenize(prompts[i:i + 256]), normalize=True)
                    for i in range(0, len(prompts), 256)])
            feats = F.normalize(feats.view(len(todo), len(tmpl), -1).mean(1), dim=-1)
            for s, f in zip(todo, feats):
                self._text_cache.put((wk, tmpl, s), f, trim=False)
        return self._stack_cached([(wk, tmpl, s) for s in sentences])

    def _texts(self, data_samples) -> Tuple[List[str], torch.Tensor]:
        """The texts of a batch, flattened, and the image of each."""
        if data_samples is None:
            raise ValueError('AffordanceCLIP needs data samples carrying the prompt '
                             f"(metainfo '{self.text_key}'), or use predict_prompts()")
        texts, index = [], []
        for i, ds in enumerate(data_samples):
            t = ds.metainfo.get(self.text_key)
            if t is None:
                raise KeyError(f"data sample {i} has no '{self.text_key}' in its "
                               "metainfo: add it to PackSegInputs' meta_keys")
            t = [t] if isinstance(t, str) else list(t)
            texts += t
            index += [i] * len(t)
        # on the CPU like the metadata it comes from; moved where it is used
        return texts, torch.tensor(index, dtype=torch.long, device='cpu')

    # ------------------------------------------------------------------
    # image
    def _backbone(self, inputs: torch.Tensor):
        with torch.no_grad() if self.freeze_clip else torch.enable_grad():
            out = self.backbone(inputs)
        if isinstance(out[-1], dict):
            return list(out[:-1]), dict(out[-1])
        return list(out), {}

    def extract_feat(self, inputs: torch.Tensor):
        """Multi-level maps (finest first) and the joint-space dict.

        With ``feature_cache_size > 0`` (frozen towers only) the outputs of
        each image are kept, keyed by a hash of its exact input tensor: an
        image seen before (same pixels after the pipeline) skips the frozen
        tower. Exact, because the frozen tower is deterministic and
        per-image (BN in eval mode); augmented images simply miss.
        """
        if self.feature_cache_size <= 0 or not self.freeze_clip:
            return self._backbone(inputs)
        # new tower weights (a loaded checkpoint) must not hit old entries
        wkey = str(hash(tuple((p.data_ptr(), p._version)
                              for p in self.backbone.parameters())))
        keys = [hashlib.blake2b(x.detach().contiguous().cpu().numpy().tobytes(),
                                digest_size=16).hexdigest() + str(tuple(x.shape)) + wkey
                for x in inputs]
        miss = [i for i, k in enumerate(keys) if k not in self._feat_cache]
        if miss:
            feats, joint = self._backbone(inputs[miss])
            for j, i in enumerate(miss):
                self._feat_cache[keys[i]] = (
                    [f[j].detach() for f in feats],
                    {k: v[j].detach() for k, v in joint.items()})
        rows = []
        for k in keys:
            self._feat_cache.move_to_end(k)
            rows.append(self._feat_cache[k])
        while len(self._feat_cache) > self.feature_cache_size:
            self._feat_cache.popitem(last=False)
        feats = [torch.stack([r[0][lvl] for r in rows]) for lvl in range(len(rows[0][0]))]
        joint = {k: torch.stack([r[1][k] for r in rows]) for k in rows[0][1]}
        return feats, joint

    def _head_logits(self, feats, joint, text, index):
        return self.decode_head(feats, joint.get('global'), text, index)

    def _clip_similarity(self, joint, text, index, source):
        key = source.split('_', 1)[1]
        dense = joint.get(key)
        if dense is None:
            raise KeyError(f"'{key}' missing from the backbone output; add it to "
                           'joint_outputs')
        dense = F.normalize(dense, dim=1).index_select(0, index.to(dense.device))
        return torch.einsum('ndhw,nd->nhw', dense, text.to(dense))[:, None]

    def encode_decode(self, inputs: torch.Tensor, batch_data_samples):
        texts, index = self._texts(batch_data_samples)
        return self._maps(inputs, self.encode_prompts(texts), index)

    def _maps(self, inputs, text, index, source=None):
        source = source or self.test_cfg.get('heatmap', 'head')
        feats, joint = self.extract_feat(inputs)
        index = index.to(inputs.device)
        text = text.to(inputs.device)
        if source == 'head':
            return self._head_logits(feats, joint, text, index)
        return self._clip_similarity(joint, text, index, source)

    # ------------------------------------------------------------------
    def loss(self, inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        """Pixel-text loss of the referring expressions vs their masks."""
        texts, index = self._texts(data_samples)
        if len(texts) != len(data_samples):
            raise ValueError('training takes one referring expression per sample '
                             f'(got {len(texts)} for {len(data_samples)} samples)')
        masks = []
        for i, ds in enumerate(data_samples):
            if 'gt_sem_seg' not in ds:
                raise KeyError(f'data sample {i} has no gt_sem_seg: load the referring '
                               'mask with LoadReferringMask')
            masks.append(ds.gt_sem_seg.data)
        masks = torch.stack(masks).to(inputs.device)
        text = self.encode_sentences(texts).to(inputs.device)
        feats, joint = self.extract_feat(inputs)
        logits = self._head_logits(feats, joint, text, index.to(inputs.device))
        return self.decode_head.loss_by_feat(logits, masks)

    def predict_prompts(self, inputs: torch.Tensor,
                        prompts: Sequence[str],
                        source: Optional[str] = None) -> torch.Tensor:
        """Score maps of every prompt on every image.

        Args:
            inputs (Tensor): ``(B, 3, H, W)`` normalised images.
            prompts (Sequence[str]): ``K`` prompts (actions).
            source (str, optional): ``'head'``, ``'clip_dense'`` or
                ``'clip_value'``; default ``test_cfg.heatmap``.

        Returns:
            Tensor: ``(B, K, H, W)`` logits (head) or cosines (baselines) at
            the input size.
        """
        prompts = _check_prompts(prompts)
        B, K = inputs.shape[0], len(prompts)
        text = self.encode_prompts(prompts).repeat(B, 1)
        index = torch.arange(B, device=inputs.device).repeat_interleave(K)
        maps = self._maps(inputs, text, index, source)
        maps = F.interpolate(maps, size=inputs.shape[-2:], mode='bilinear',
                             align_corners=self.align_corners)
        return maps.view(B, K, *inputs.shape[-2:])

    def predict(self, inputs: torch.Tensor, data_samples=None):
        """Heat maps of each sample's prompt(s), at the original size."""
        texts, index = self._texts(data_samples)
        source = self.test_cfg.get('heatmap', 'head')
        maps = self._maps(inputs, self.encode_prompts(texts), index, source)
        maps = F.interpolate(maps, size=inputs.shape[-2:], mode='bilinear',
                             align_corners=self.align_corners)
        thr = float(self.test_cfg.get('threshold', 0.5))
        for i, ds in enumerate(data_samples):
            m = maps[index.to(maps.device) == i][:, 0]  # (K, H, W)
            meta = ds.metainfo
            H, W = m.shape[-2:]
            pad = meta.get('padding_size', [0, 0, 0, 0])
            left, right, top, bottom = pad
            m = m[:, top:H - bottom, left:W - right]
            ori = meta.get('ori_shape', m.shape[-2:])
            if meta.get('flip', False):
                m = m.flip(-1 if meta.get('flip_direction') == 'horizontal' else -2)
            m = F.interpolate(m[None], size=tuple(ori[:2]), mode='bilinear',
                              align_corners=self.align_corners)[0]
            heat = m.sigmoid() if source == 'head' else m
            ds.set_data({
                'seg_logits': PixelData(data=m),
                'pred_heatmap': PixelData(data=heat),
                'pred_sem_seg': PixelData(data=(heat[:1] > thr).to(torch.uint8)),
            })
        return data_samples

    def _forward(self, inputs: torch.Tensor, data_samples=None):
        """Raw logits ``(N, 1, h, w)`` at the head's output size."""
        if data_samples is None:
            raise ValueError("mode='tensor' needs data samples with prompts (or call "
                             'predict_prompts)')
        return self.encode_decode(inputs, data_samples)


__all__ = ['AffordanceCLIP', 'AFFORDANCE_TEMPLATES']
