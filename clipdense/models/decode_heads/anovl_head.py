"""AnoVL's scoring head: patch-text matching without temperature, 3x3
smoothing, and the per-image test-time adapter."""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from clipdense.registry import MODELS


class TextBasisAdapter(nn.Module):
    """AnoVL's MVTec adapter (``model.TextAdapter``):
    ``x' = 0.5 x + 0.5 tanh(W x/|x| + b) T`` with ``T`` the ``(2M, D)``
    per-sentence text embeddings: a gated projection of each token onto the
    prompt basis."""

    def __init__(self, dim: int, num_basis: int):
        super().__init__()
        self.fc = nn.Linear(dim, num_basis)

    def forward(self, x: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
        gate = torch.tanh(self.fc(F.normalize(x, dim=-1)))
        return 0.5 * x + 0.5 * gate @ bank.to(x.dtype)


class LinearAdapter(nn.Module):
    """AnoVL's VisA adapter (``model.Adapter``): ``x' = 0.5 x + 0.5 (W x/|x| + b)``."""

    def __init__(self, dim: int, num_basis: int = 0):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bank: torch.Tensor = None) -> torch.Tensor:
        return 0.5 * x + 0.5 * self.fc(F.normalize(x, dim=-1))


ADAPTERS = {'text_basis': TextBasisAdapter, 'linear': LinearAdapter}


@MODELS.register_module()
class AnoVLHead(BaseModule):
    """Zero-shot anomaly scoring of AnoVL (Deng et al., "AnoVL: Adapting
    Vision-Language Models for Unified Zero-shot Anomaly Localization",
    arXiv 2308.15939, Sec. 3.2-3.4).

    * Patch scores: ``p = softmax(s * [cos(f, t_n), cos(f, t_a)])`` with
      ``s = logit_scale`` (1: no temperature, as the released code; the
      probabilities stay near 0.5 but ranking metrics do not care), the
      anomaly map is ``p_a`` smoothed by a ``k x k`` mean filter with
      replicate padding (k=3; 1 turns it off).
    * Image score: ``p_a`` of the global embedding, averaged over the views
      the detector passes.
    * Test-time adaptation (``tta``): an adapter on the patch tokens is
      reset for every test image and trained for ``steps`` AdamW steps on
      that image alone. Tokens with Gaussian noise (std ``noise_std``) play
      anomalies: ``loss = H(p(clean)) + hard_weight * (-log p_a(noisy) -
      log p_n(clean))``. Maps come from the adapted clean tokens.

    How the adaptation runs (``tta`` keys; the AnoVL paper configs set the
    authors' choices, ``hq-deng/AnoVL`` @3a70bfd ``vl_test.py``):

    * ``normalize_tokens``: the authors adapt the *raw* tokens
      (``ln_post`` + ``proj``, not L2-normalised; ``False``), so the noise
      of std 0.055 is small next to them; ``True`` (clipdense's earlier
      choice) adapts unit tokens, where that noise is larger than the
      signal.
    * ``optimizer_scope``: ``'class'`` keeps one AdamW per class name whose
      moments carry over from image to image while the adapter weights are
      reset (the authors); ``'image'`` makes a fresh optimiser per image.
    * ``rng_scope``: ``'run'`` draws the reset weights and the noise of
      every image from one generator seeded once with ``seed`` (the
      authors draw from torch's global generator, so every image starts
      from other weights); ``'image'`` reseeds per image, so every image
      starts from the same weights and results do not depend on the order
      of the images.

    Args:
        text_encoder (dict): an :class:`AnomalyPromptEncoder` config.
        logit_scale (float): factor on the cosines (1 = AnoVL).
        smooth_kernel (int): odd mean-filter size on the patch map.
        tta (dict, optional): None (training-free) or a dict with ``steps``
            (5), ``lr`` (1e-3), ``weight_decay`` (0.01, AdamW's default),
            ``noise_std`` (0.055), ``hard_weight`` (0.5), ``adapter``
            (``'text_basis'`` MVTec / ``'linear'`` VisA), ``seed``,
            ``normalize_tokens`` (True), ``optimizer_scope`` (``'image'``)
            and ``rng_scope`` (``'image'``) - see above.
        init_cfg: unused (the adapter is reset per image).
    """

    TTA_DEFAULTS = dict(steps=5, lr=1e-3, weight_decay=0.01, noise_std=0.055,
                        hard_weight=0.5, adapter='text_basis', seed=0,
                        normalize_tokens=True, optimizer_scope='image',
                        rng_scope='image')

    def __init__(self, text_encoder: dict, *, logit_scale: float = 1.0,
                 smooth_kernel: int = 3, tta: Optional[dict] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.text_encoder = MODELS.build(text_encoder)
        self.logit_scale = float(logit_scale)
        if smooth_kernel < 1 or smooth_kernel % 2 == 0:
            raise ValueError(f'smooth_kernel must be a positive odd size, got {smooth_kernel}')
        self.smooth_kernel = int(smooth_kernel)
        self.tta_cfg = None
        self.adapter = None
        if tta is not None:
            unknown = set(tta) - set(self.TTA_DEFAULTS)
            if unknown:
                raise ValueError(f'AnoVLHead tta: unknown keys {sorted(unknown)}; '
                                 f'allowed: {sorted(self.TTA_DEFAULTS)}')
            cfg = dict(self.TTA_DEFAULTS, **tta)
            if cfg['adapter'] not in ADAPTERS:
                raise ValueError(f"tta adapter must be one of {sorted(ADAPTERS)}, "
                                 f"got {cfg['adapter']!r}")
            if int(cfg['steps']) < 1:
                raise ValueError(f"tta steps must be >= 1, got {cfg['steps']}")
            for key, allowed in (('optimizer_scope', ('image', 'class')),
                                 ('rng_scope', ('image', 'run'))):
                if cfg[key] not in allowed:
                    raise ValueError(f'tta {key} must be one of {allowed}, got {cfg[key]!r}')
            self.tta_cfg = cfg
            self._optimizers = {}  # class name -> AdamW (optimizer_scope='class')
            self._run_gen = None  # the generator of rng_scope='run'

            p = self.text_encoder.prompts('object')
            num_basis = len(p['normal']) + len(p['anomalous'])
            self.adapter = ADAPTERS[cfg['adapter']](self.text_encoder.embed_dim, num_basis)
            self.reset_adapter()

    # ------------------------------------------------------------------
    @torch.no_grad()
    def reset_adapter(self, generator: Optional[torch.Generator] = None):
        """Draw new initial adapter weights as ``nn.Linear.reset_parameters``
        does (Kaiming-uniform weight, uniform bias), from ``generator``
        (default: a new one seeded with ``tta['seed']``, i.e. the same
        weights every time, on any device)."""
        g = generator
        if g is None:
            g = torch.Generator().manual_seed(int(self.tta_cfg['seed']))
        gain = nn.init.calculate_gain('leaky_relu', math.sqrt(5))
        for m in self.adapter.modules():
            if isinstance(m, nn.Linear):
                bound = math.sqrt(3.0) * gain / math.sqrt(m.in_features)
                m.weight.copy_(torch.empty(m.weight.shape, device='cpu').uniform_(-bound, bound, generator=g))
                bound = 1.0 / math.sqrt(m.in_features)
                m.bias.copy_(torch.empty(m.bias.shape, device='cpu').uniform_(-bound, bound, generator=g))

    def reset_tta_state(self):
        """Forget the per-class optimisers and the run's random stream
        (``optimizer_scope='class'`` / ``rng_scope='run'``): the next image
        starts as the first of a run."""
        if self.tta_cfg is not None:
            self._optimizers = {}
            self._run_gen = None

    def init_weights(self):
        if self.adapter is not None:
            self.reset_adapter()
        self._is_init = True

    def texts(self, cls_names: Sequence[str]) -> List[Dict[str, torch.Tensor]]:
        """Text embeddings per image (cached per class by the encoder)."""
        return [self.text_encoder(n) for n in cls_names]

    def probs(self, feats: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``softmax(scale * cos)`` over [normal, anomalous]: ``(..., 2)``."""
        f = F.normalize(feats, dim=-1)
        return (self.logit_scale * f @ text.t().to(f.dtype)).softmax(dim=-1)

    def smooth(self, amap: torch.Tensor) -> torch.Tensor:
        """``k x k`` mean filter with replicate padding, ``(B, 1, h, w)``."""
        k = self.smooth_kernel
        if k == 1:
            return amap
        return F.avg_pool2d(F.pad(amap, [k // 2] * 4, mode='replicate'), k, stride=1)

    def adapt(self, tokens: torch.Tensor, text: Dict[str, torch.Tensor],
              cls_name: Optional[str] = None) -> torch.Tensor:
        """Test-time adaptation on one image.

        Args:
            tokens (Tensor): ``(N, D)`` patch tokens of one image.
            text (dict): from :meth:`texts`.
            cls_name (str, optional): the image's class (the key of its
                optimiser with ``optimizer_scope='class'``).

        Returns:
            Tensor: ``(N, D)`` adapted tokens (no gradient).
        """
        if torch.is_inference_mode_enabled():
            raise RuntimeError('AnoVL test-time adaptation needs autograd; run the model '
                               'under torch.no_grad(), not torch.inference_mode()')
        cfg = self.tta_cfg
        if cfg['rng_scope'] == 'run':
            if self._run_gen is None:
                self._run_gen = torch.Generator().manual_seed(int(cfg['seed']))
            g = self._run_gen
        else:
            g = torch.Generator().manual_seed(int(cfg['seed']))
        # the weights first, then the noise of every step: the authors' order
        self.reset_adapter(g)
        bank, t = text['bank'], text['text']
        x = tokens.detach().float()
        if cfg['normalize_tokens']:
            x = F.normalize(x, dim=-1)
        params = [p for p in self.adapter.parameters()]
        opt = None
        if cfg['optimizer_scope'] == 'class':
            opt = self._optimizers.get(cls_name)
        if opt is None:
            opt = torch.optim.AdamW(params, lr=cfg['lr'], weight_decay=cfg['weight_decay'])
            if cfg['optimizer_scope'] == 'class':
                self._optimizers[cls_name] = opt
        n = x.shape[0]
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
            for _ in range(int(cfg['steps'])):
                # drawn on the CPU (as torch.normal(0, std, shape) there)
                noise = torch.empty(x.shape, device='cpu').normal_(0.0, float(cfg['noise_std']), generator=g)
                noisy = x + noise.to(x.device)
                pr = self.probs(self.adapter(torch.cat([x, noisy]), bank), t)
                clean, dirty = pr[:n], pr[n:]
                soft = -(clean * clean.clamp_min(1e-12).log()).sum(-1).mean()
                hard = -dirty[:, 1].clamp_min(1e-12).log().mean() \
                    - clean[:, 0].clamp_min(1e-12).log().mean()
                loss = soft + cfg['hard_weight'] * hard
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        with torch.no_grad():
            return self.adapter(x, bank).to(tokens.dtype)

    def patch_probs(self, patch_tokens: torch.Tensor, texts: List[Dict[str, torch.Tensor]],
                    cls_names: Optional[Sequence[str]] = None) -> torch.Tensor:
        """``p_a`` of every patch (after the test-time adaptation, when on),
        not smoothed: ``(B, 1, h, w)``."""
        b, d, h, w = patch_tokens.shape
        if len(texts) != b:
            raise ValueError(f'{len(texts)} text entries for {b} images')
        tokens = patch_tokens.flatten(2).transpose(1, 2)  # (B, hw, D)
        maps = []
        for i in range(b):
            tok = tokens[i]
            if self.adapter is not None:
                tok = self.adapt(tok, texts[i], None if cls_names is None else cls_names[i])
            maps.append(self.probs(tok, texts[i]['text'])[:, 1])
        return torch.stack(maps).reshape(b, 1, h, w)

    def image_scores(self, global_views: torch.Tensor,
                     texts: List[Dict[str, torch.Tensor]]) -> torch.Tensor:
        """``p_a`` of the global embeddings ``(B, V, D)`` averaged over the
        ``V`` views: ``(B,)``."""
        return torch.stack([self.probs(global_views[i], texts[i]['text'])[:, 1].mean()
                            for i in range(global_views.shape[0])])

    def forward(self, patch_tokens: torch.Tensor, texts: List[Dict[str, torch.Tensor]],
                global_views: Optional[torch.Tensor] = None,
                cls_names: Optional[Sequence[str]] = None):
        """Score a batch.

        Args:
            patch_tokens (Tensor): ``(B, D, h, w)`` joint-space patch tokens.
            texts (list[dict]): one :meth:`texts` entry per image.
            global_views (Tensor, optional): ``(B, V, D)`` global embeddings
                of ``V`` views of each image.
            cls_names (Sequence[str], optional): the class of each image
                (for ``optimizer_scope='class'``).

        Returns:
            tuple[Tensor, Tensor | None]: anomaly maps ``(B, 1, h, w)``
            (probabilities, smoothed, at the token grid) and image scores
            ``(B,)`` (None without ``global_views``).
        """
        amap = self.smooth(self.patch_probs(patch_tokens, texts, cls_names))
        scores = None
        if global_views is not None:
            scores = self.image_scores(global_views, texts)
        return amap, scores
