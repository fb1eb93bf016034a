"""AffordanceCLIP's light text-conditioned feature pyramid (Cuttano et al.,
"What does CLIP know about peeling a banana?", CVPR 2024 Workshop MAR)."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from clipdense.registry import MODELS

FUSIONS = ('film', 'concat', 'none')


@MODELS.register_module()
class AffordanceHead(BaseModule):
    """Fuse multi-level frozen CLIP ResNet features top-down, conditioned on
    a text embedding, into per-pixel embeddings scored against that text.

    The paper states a lightweight FPN over multi-level CLIP features,
    trained with a pixel-text objective on referring data, with the CLIP
    towers frozen (methods.md Part B 4.1). Its layer details are not public;
    this head follows the CRIS-style reading of methods.md 4.2 and makes
    every open point a constructor option:

    1. A 1x1 lateral conv per level (``in_channels`` low to high stride).
    2. The attention-pooled global image embedding, linearly projected, is
       added to the top (lowest-resolution) level (``use_global``).
    3. Top-down: each level = lateral + upsampled coarser level, then the
       text conditioning (``fusion``):

       * ``'film'`` (default): ``f * (1 + gamma(t)) + beta(t)`` with
         per-level linear ``gamma``/``beta`` from the text embedding,
         initialised to zero (the pyramid starts unconditioned);
       * ``'concat'``: the projected text is tiled, concatenated to the
         map and mixed by a 1x1 conv (CRIS's fusion style);
       * ``'none'``: no conditioning inside the pyramid (the text enters
         only at the final dot product; all prompts share one pyramid
         pass, the cheapest multi-prompt mode).
    4. A 3x3 conv on the finest level and a 1x1 projection to the CLIP
       joint space (``embed_dim``) give pixel embeddings ``f`` at the
       finest input stride.
    5. Score: ``s * cos(f, t') + b`` with learnable ``s`` (log-space) and
       ``b``; ``t'`` is the CLIP text embedding itself (``text_proj=False``,
       keeps the head in CLIP's text space so unseen action words stay
       meaningful) or a learned linear map of it (``text_proj=True``).

    Loss (``loss_by_feat``): BCE with logits plus dice of the sigmoid map
    against the referring mask, both after upsampling the scores to the
    mask size; pixels equal to ``ignore_index`` are left out.

    Args:
        in_channels (Sequence[int]): channels of the backbone levels, from
            the finest to the coarsest.
        embed_dim (int): CLIP joint-space dimension (text embeddings and
            the global image embedding).
        channels (int): width of the pyramid.
        fusion (str): ``'film'``, ``'concat'`` or ``'none'``.
        use_global (bool): add the global image embedding to the top level.
        text_proj (bool): learn a linear map of the text before scoring.
        norm_cfg (dict, optional): norm of the pyramid convs.
        act_cfg (dict): activation of the pyramid convs.
        logit_scale_init (float): initial ``s``.
        logit_bias_init (float): initial ``b`` (negative: most pixels of a
            referring mask are background).
        loss_bce_weight (float): weight of the BCE term.
        loss_dice_weight (float): weight of the dice term.
        ignore_index (int): mask value left out of the loss.
        align_corners (bool): of the bilinear upsamplings.
        init_cfg (dict, optional): mm init config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 embed_dim: int,
                 channels: int = 256,
                 *,
                 fusion: str = 'film',
                 use_global: bool = True,
                 text_proj: bool = False,
                 norm_cfg: Optional[dict] = dict(type='GN', num_groups=32),
                 act_cfg: dict = dict(type='ReLU'),
                 logit_scale_init: float = 10.0,
                 logit_bias_init: float = -2.0,
                 loss_bce_weight: float = 1.0,
                 loss_dice_weight: float = 1.0,
                 ignore_index: int = 255,
                 align_corners: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        in_channels = [int(c) for c in in_channels]
        if not in_channels:
            raise ValueError('AffordanceHead needs at least one input level')
        if fusion not in FUSIONS:
            raise ValueError(f'fusion must be one of {FUSIONS}, got {fusion!r}')
        if logit_scale_init <= 0:
            raise ValueError(f'logit_scale_init must be > 0, got {logit_scale_init}')
        if loss_bce_weight < 0 or loss_dice_weight < 0 or \
                loss_bce_weight + loss_dice_weight == 0:
            raise ValueError('loss weights must be >= 0 and not both 0')
        self.in_channels = in_channels
        self.embed_dim = int(embed_dim)
        self.channels = int(channels)
        self.fusion = fusion
        self.use_global = bool(use_global)
        self.loss_bce_weight = float(loss_bce_weight)
        self.loss_dice_weight = float(loss_dice_weight)
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        C, D = self.channels, self.embed_dim
        self.laterals = nn.ModuleList(
            ConvModule(c, C, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for c in in_channels)
        self.global_proj = nn.Linear(D, C) if self.use_global else None
        n = len(in_channels)
        if fusion == 'film':
            self.film = nn.ModuleList(nn.Linear(D, 2 * C) for _ in range(n))
        elif fusion == 'concat':
            self.text_in = nn.ModuleList(nn.Linear(D, C) for _ in range(n))
            self.mix = nn.ModuleList(
                ConvModule(2 * C, C, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
                for _ in range(n))
        self.smooth = ConvModule(C, C, 3, padding=1, norm_cfg=norm_cfg,
                                 act_cfg=act_cfg)
        self.pixel_proj = nn.Conv2d(C, D, 1)
        self.text_proj = nn.Linear(D, D) if text_proj else None
        self.logit_scale = nn.Parameter(
            torch.tensor(float(logit_scale_init)).log())
        self.logit_bias = nn.Parameter(torch.tensor(float(logit_bias_init)))

    def init_weights(self):
        super().init_weights()
        # FiLM starts as the identity (gamma = beta = 0): the pyramid is
        # first trained as a plain FPN and learns how much to condition
        if self.fusion == 'film':
            for lin in self.film:
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)

    # ------------------------------------------------------------------
    def _condition(self, level: int, x: torch.Tensor,
                   text: torch.Tensor) -> torch.Tensor:
        if self.fusion == 'film':
            gamma, beta = self.film[level](text).chunk(2, dim=1)
            return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        if self.fusion == 'concat':
            t = self.text_in[level](text)[:, :, None, None].expand(
                -1, -1, *x.shape[-2:])
            return self.mix[level](torch.cat([x, t], dim=1))
        return x

    def pixel_embeddings(self, feats: Sequence[torch.Tensor],
                         global_emb: Optional[torch.Tensor],
                         text: Optional[torch.Tensor]) -> torch.Tensor:
        """The text-conditioned pyramid.

        Args:
            feats (Sequence[Tensor]): ``(N, C_l, H_l, W_l)`` per level, finest
                first, one row per (image, prompt) pair.
            global_emb (Tensor, optional): ``(N, D)`` global image embedding
                (needed when ``use_global``).
            text (Tensor, optional): ``(N, D)`` text embeddings (needed unless
                ``fusion='none'``).

        Returns:
            Tensor: ``(N, D, H_0, W_0)`` pixel embeddings (not normalised).
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f'AffordanceHead was built for {len(self.in_channels)} '
                             f'levels but got {len(feats)}; make the backbone\'s '
                             'out_indices match the head\'s in_channels')
        for f, c in zip(feats, self.in_channels):
            if f.shape[1] != c:
                raise ValueError(f'level channels {[f.shape[1] for f in feats]} do '
                                 f'not match in_channels {self.in_channels}')
        lat = [m(f) for m, f in zip(self.laterals, feats)]
        if self.use_global:
            if global_emb is None:
                raise ValueError("use_global=True needs the backbone's 'global' "
                                 'output (joint_outputs containing "global")')
            lat[-1] = lat[-1] + self.global_proj(global_emb)[:, :, None, None]
        if self.fusion != 'none' and text is None:
            raise ValueError(f"fusion='{self.fusion}' needs a text embedding")
        x = self._condition(len(lat) - 1, lat[-1], text)
        for level in range(len(lat) - 2, -1, -1):
            up = F.interpolate(x, size=lat[level].shape[-2:], mode='bilinear',
                               align_corners=self.align_corners)
            x = self._condition(level, lat[level] + up, text)
        return self.pixel_proj(self.smooth(x))

    def score(self, pix: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``s * cos(pix, t') + b``: ``(N, D, H, W)`` x ``(N, D)`` ->
        ``(N, 1, H, W)`` logits."""
        if self.text_proj is not None:
            text = self.text_proj(text)
        cos = torch.einsum('ndhw,nd->nhw', F.normalize(pix, dim=1),
                           F.normalize(text, dim=-1))
        return (self.logit_scale.exp() * cos + self.logit_bias)[:, None]

    def forward(self, feats: Sequence[torch.Tensor],
                global_emb: Optional[torch.Tensor],
                text: torch.Tensor,
                img_index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-pixel logits of each (image, prompt) pair.

        Args:
            feats (Sequence[Tensor]): ``(B, C_l, H_l, W_l)`` per level,
                finest first.
            global_emb (Tensor, optional): ``(B, D)``.
            text (Tensor): ``(N, D)`` text embeddings.
            img_index (Tensor, optional): ``(N,)`` image of each text row;
                default ``arange(N)`` (one text per image, ``N == B``).

        Returns:
            Tensor: ``(N, 1, H_0, W_0)`` logits at the finest level's size.
        """
        if text.dim() != 2 or text.shape[1] != self.embed_dim:
            raise ValueError(f'text embeddings must be (N, {self.embed_dim}), '
                             f'got {tuple(text.shape)}')
        B = feats[0].shape[0]
        if img_index is None:
            if text.shape[0] != B:
                raise ValueError(f'{text.shape[0]} texts for {B} images: give '
                                 'img_index to pair them')
            sel = lambda t: t  # noqa: E731
        else:
            img_index = img_index.to(feats[0].device)
            sel = lambda t: t.index_select(0, img_index)  # noqa: E731
        g = global_emb
        if self.fusion == 'none':
            # one pyramid pass per image, shared by all its prompts
            pix = sel(self.pixel_embeddings(feats, g, None))
        else:
            pix = self.pixel_embeddings([sel(f) for f in feats],
                                        None if g is None else sel(g), text)
        return self.score(pix, text.to(pix.dtype))

    # ------------------------------------------------------------------
    def loss_by_feat(self, logits: torch.Tensor,
                     masks: torch.Tensor) -> Dict[str, torch.Tensor]:
        """BCE + dice of ``logits`` ``(N, 1, h, w)`` against binary
        ``masks`` ``(N, H, W)`` (``ignore_index`` ignored)."""
        if masks.dim() == 4:
            masks = masks[:, 0]
        if logits.shape[0] != masks.shape[0]:
            raise ValueError(f'{logits.shape[0]} score maps for {masks.shape[0]} masks')
        logits = F.interpolate(logits, size=masks.shape[-2:], mode='bilinear',
                               align_corners=self.align_corners)[:, 0].float()
        valid = (masks != self.ignore_index).float()
        target = (masks == 1).float() * valid
        bad = ((masks != 0) & (masks != 1) & (masks != self.ignore_index)).any()
        if bad:
            raise ValueError('referring masks must hold 0/1 (and ignore_index); got '
                             f'values {masks.unique().tolist()[:8]}')
        losses = {}
        n_valid = valid.sum().clamp_min(1.0)
        if self.loss_bce_weight > 0:
            bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
            losses['loss_bce'] = self.loss_bce_weight * (bce * valid).sum() / n_valid
        if self.loss_dice_weight > 0:
            p = logits.sigmoid() * valid
            inter = (p * target).flatten(1).sum(1)
            denom = p.flatten(1).sum(1) + target.flatten(1).sum(1)
            dice = 1 - (2 * inter + 1) / (denom + 1)
            losses['loss_dice'] = self.loss_dice_weight * dice.mean()
        return losses
