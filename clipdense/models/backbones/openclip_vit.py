"""open_clip ViT and EVA image towers as mm backbones with dense outputs."""
import copy
import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint

from clipdense.registry import MODELS
from ..utils.dense_attention import LAST_BLOCK_PATHS, BlockOps, vv_dual_path_step
from ..utils.pos_embed import (check_pos_embed_mode, replace_with_resized_table,
                               resize_pos_table)
from .openclip_base import OpenCLIPVisualBase


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (``norm_cfg=dict(type='LN')``)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = super().forward(x)
        return x.permute(0, 3, 1, 2)


def _cpu_reduced_precision(x: torch.Tensor) -> bool:
    """bf16/fp16 on the CPU (autocast or half tensors): there torch's fused
    attention kernel is slower than nn.MultiheadAttention's matmul path
    (ViT-B/16 at 512 in bf16: 0.60 vs 0.54 s on 2 cores), so the fused path
    is used in fp32 and on CUDA only."""
    if x.device.type != 'cpu':
        return False
    if x.dtype in (torch.bfloat16, torch.float16):
        return True
    try:
        return torch.is_autocast_enabled('cpu')
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


class _TokenDropPath:
    """Stochastic depth on a residual branch, installed as a forward hook on
    an open_clip block's ``ls_1`` / ``ls_2`` (no parameters, so state dicts
    are unchanged).

    As in DenseCLIP's ``CLIPVisionTransformer``, which applies timm's
    ``drop_path`` to ``(L, N, D)`` tensors: one keep/drop draw per *token
    position*, shared by the images of the batch (``token_dim`` is set by
    the backbone for the layout the block runs in).
    """

    def __init__(self, prob: float):
        self.prob = float(prob)
        self.token_dim = 1

    def __call__(self, module, inputs, output):
        if not module.training or self.prob <= 0:
            return output
        keep = 1.0 - self.prob
        shape = [1] * output.dim()
        shape[self.token_dim] = output.shape[self.token_dim]
        mask = output.new_empty(shape).bernoulli_(keep)
        return output * mask / keep


def _build_norm(norm_cfg: Optional[dict], channels: int) -> nn.Module:
    if norm_cfg is None:
        return nn.Identity()
    cfg = dict(norm_cfg)
    if cfg.get('type') in ('LN', 'LN2d', 'LayerNorm2d'):
        return LayerNorm2d(channels, eps=cfg.get('eps', 1e-6))
    from mmcv.cnn import build_norm_layer
    return build_norm_layer(cfg, channels)[1]


class SimpleFeaturePyramid(BaseModule):
    """ViT taps -> 4 levels (x4 up, x2 up, identity, x2 down), as the
    BEiT/MAE/DenseCLIP heads do (strides ``p/4, p/2, p, 2p`` for patch
    ``p``). The x4 branch is deconv-norm-GELU-deconv; ``norm_cfg`` defaults
    to plain BN (SyncBN only when a config asks for it).

    ``branch_norm='group'`` starts every branch with ``GroupNorm(1, C)``, as
    DenseCLIP's ``CLIPVisionTransformer`` (so the raw residual-stream tokens
    are normalised before they reach the neck); the modules then sit at the
    authors' indices (``fpn1.0`` GN, ``fpn1.1`` deconv, ``fpn1.2`` norm,
    ``fpn1.4`` deconv; ``fpn2.0`` GN, ``fpn2.1`` deconv; ``fpn3`` GN;
    ``fpn4.0`` GN), so their checkpoints map by prefix.
    """

    BRANCH_NORMS = (None, 'group')

    def __init__(self, channels: int, norm_cfg: Optional[dict] = dict(type='BN'),
                 branch_norm: Optional[str] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if branch_norm not in self.BRANCH_NORMS:
            raise ValueError(f"pyramid branch_norm must be None or 'group', got {branch_norm!r}")
        self.branch_norm = branch_norm
        up4 = [nn.ConvTranspose2d(channels, channels, 2, 2),
               _build_norm(norm_cfg, channels), nn.GELU(),
               nn.ConvTranspose2d(channels, channels, 2, 2)]
        if branch_norm is None:
            self.fpn1 = nn.Sequential(*up4)
            self.fpn2 = nn.ConvTranspose2d(channels, channels, 2, 2)
            self.fpn3 = nn.Identity()
            self.fpn4 = nn.MaxPool2d(2, 2)
        else:
            gn = (lambda: nn.GroupNorm(1, channels))
            self.fpn1 = nn.Sequential(gn(), *up4)
            self.fpn2 = nn.Sequential(gn(), nn.ConvTranspose2d(channels, channels, 2, 2))
            self.fpn3 = gn()
            self.fpn4 = nn.Sequential(gn(), nn.MaxPool2d(2, 2))

    def forward(self, feats):
        return tuple(op(f) for op, f in zip(
            (self.fpn1, self.fpn2, self.fpn3, self.fpn4), feats))


@MODELS.register_module()
class OpenCLIPViT(OpenCLIPVisualBase):
    """CLIP ViT image tower of open_clip (and EVA towers built through timm)
    with taps, a feature pyramid and dense joint-space outputs.

    Wraps ``open_clip.create_model(arch).visual``: either open_clip's
    ``VisionTransformer`` (OpenAI / LAION / DataComp ViTs) or a ``TimmModel``
    whose trunk is a timm ``Eva`` (``EVA02-B-16``, ``EVA02-L-14``, ...). The
    tower's own modules run in the tower's own order; only the token
    embedding is redone here so that any input size works.

    Outputs for mm necks/heads are the token maps after the blocks in
    ``out_indices`` (or the 4-level pyramid built from them). Joint-space
    outputs (the space text embeddings live in):

    * ``'global'``: the pooled embedding, equal to ``model.encode_image``
      at the trained input size.
    * ``'dense'``: DenseCLIP's per-token embeddings (Rao et al., CVPR 2022):
      the final norm (``ln_post``) and projection applied to every patch
      token. (DenseCLIP's own ViT added the class embedding twice; this one
      embeds as CLIP does unless ``class_embed_twice=True``.)
    * ``'value'``: MaskCLIP's last-block value path (Zhou et al., ECCV
      2022): the last block's attention replaced by each token's own value
      (``out_proj(v)``), residual and FFN kept, then norm and projection.
    * ``'keys'``: the last block's keys through the output projection, as
      MaskCLIP uses for key smoothing (in the tower width ``C``).
    * ``'vv'``: the V-V attention dual path of CLIP Surgery / AnoVL (Deng
      et al., 2023, Sec. 3.1) over the blocks in ``vv_indices``: starting at
      the first of them, ``x_vv += Attn_vv(LN1(x_ori))`` with
      ``Attn_vv = softmax(v v^T / sqrt(d)) v``, no FFN, fed from the original
      path; projected to the joint space at each tap.

    Input sizes: any ``H, W >= patch``. The positional table (and EVA's
    rotary table) is resized from the trained grid once per grid size and
    cached (recomputed each forward only while the table is being trained).
    With ``patch_pad='corner'`` (default) a size that is not a multiple of
    the patch (e.g. 512 for patch-14 towers) is zero-padded at the bottom
    and right to the next multiple, as mmseg's ``PatchEmbed`` does; the
    token grid is then ``ceil(H/p) x ceil(W/p)`` and covers the padded
    image. ``patch_pad='error'`` refuses such sizes instead.

    Patch dropout and timm's patch dropout, which drop tokens, are not
    applied: dense outputs need every token.

    Args:
        arch (str): open_clip architecture with a ViT or EVA image tower.
        pretrained (str, optional): open_clip tag, local checkpoint, OpenAI
            TorchScript archive or ``.safetensors``; see
            :mod:`clipdense.models.utils.clip_loading`.
        out_indices (Sequence[int], optional): blocks to tap (negative
            indices count from the end). Default: 4 evenly spaced blocks
            ending with the last (``[2, 5, 8, 11]`` for 12 blocks); DenseCLIP
            used ``[3, 5, 7, 11]``, VLTSeg ``[9, 14, 19, 23]`` for EVA02-L.
        pyramid (bool): turn the 4 taps into a 4-level pyramid
            (:class:`SimpleFeaturePyramid`); ``False`` returns the taps at
            stride ``patch``.
        norm_cfg (dict, optional): norm of the pyramid's x4 branch
            (``dict(type='BN')`` default, ``'LN'``, ``'SyncBN'``, or None).
        pyramid_norm (str, optional): ``'group'``: ``GroupNorm(1, C)`` at
            the start of every pyramid branch (DenseCLIP); None: none.
        joint_outputs (Sequence[str]): any of ``'global'``, ``'dense'``,
            ``'value'``, ``'keys'``, ``'vv'``.
        vv_indices (Sequence[int], optional): blocks of the V-V dual path;
            default all blocks (AnoVL) when ``'vv'`` is requested.
        freeze (str): ``'none'``, ``'all'`` or ``'all_but_norms'`` (norm
            layers and positional tables trainable). The pyramid is never
            frozen.
        patch_pad (str): ``'corner'`` or ``'error'`` (see above).
        drop_path_rate (float, optional): stochastic depth: timm's
            ``drop_path_rate`` for EVA towers (VLTSeg uses 0.2); for open_clip
            ViTs, rates ``linspace(0, rate, depth)`` on the blocks' residual
            branches, drawn per token position as DenseCLIP's code does
            (DenseCLIP ViT-B/16: 0.1).
        with_cp (bool): gradient checkpointing of the blocks in training.
        fused_attention (bool): run the attention of open_clip blocks with
            fused ``scaled_dot_product_attention`` (default) instead of
            ``nn.MultiheadAttention``; same results to float rounding, about
            1.25x faster per block on the CPU at 1025 tokens in fp32. In
            bf16/fp16 on the CPU the block's own attention is used (faster
            there).
        strict (bool): refuse weights of another architecture.
        quick_gelu (bool, optional): QuickGELU override; ``None`` follows the
            weights (OpenAI weights need QuickGELU).
        cache_dir (str, optional): where tag weights are looked for.
        pos_interp (str): interpolation mode of the positional table with
            ``pos_embed_mode='bicubic-per-forward'``.
        pos_embed_mode (str): ``'bicubic-per-forward'`` (default: CLIP's
            table resized to each grid, cached) or
            ``'bilinear-once-trainable'`` (DenseCLIP: resized once,
            bilinearly, to ``pos_embed_size // patch`` at build time; that
            table is the parameter, resized bilinearly per forward when the
            grid differs). open_clip ViTs only.
        pos_embed_size (int | tuple, optional): training input size in
            pixels for ``'bilinear-once-trainable'`` (DenseCLIP: 640).
        class_embed_twice (bool): add the class embedding to the class token
            a second time (through its positional row), as DenseCLIP's ViT
            does; its released ViT checkpoint was trained so. Default off.
        pos_interp (str): interpolation mode of the positional table.
        pos_antialias (bool): antialias the bilinear/bicubic resize of the
            positional table (default). ``False`` is plain
            ``F.interpolate`` as mmseg 0.x's ViT ran it (MaskCLIP); upsampled
            tables then differ slightly (torch's antialiased bicubic uses
            PIL's kernel).
        ln_eps (float, optional): override the eps of every LayerNorm of
            the image tower. MaskCLIP's mmseg ViT port ran ``1e-6`` (with
            exact GELU, ``quick_gelu=False``) where CLIP was trained with
            ``1e-5`` and QuickGELU; its paper configs reproduce that model.
            ``None`` keeps the tower's own.
        init_cfg (dict, optional): init of the pyramid only.

    Attributes:
        out_channels (list[int]): channels of the returned maps (the width).
        strides (list[float]): their strides.
        embed_dim (int): joint-space dimension ``D``.
        patch_size (int): the patch size ``p``.
    """

    # + the registered last-block paths ('clearclip', 'sclip'; dense_attention.py)
    JOINT_OUTPUTS = ('global', 'dense', 'value', 'keys', 'vv') + tuple(LAST_BLOCK_PATHS)

    def __init__(self, arch: str = 'ViT-B-16', pretrained: Optional[str] = None, *,
                 out_indices: Optional[Sequence[int]] = None,
                 pyramid: bool = True,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 joint_outputs: Sequence[str] = (),
                 vv_indices: Optional[Sequence[int]] = None,
                 freeze: str = 'none',
                 patch_pad: str = 'corner',
                 drop_path_rate: Optional[float] = None,
                 with_cp: bool = False,
                 fused_attention: bool = True,
                 strict: bool = True,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None,
                 pos_interp: str = 'bicubic',
                 pyramid_norm: Optional[str] = None,
                 pos_embed_mode: str = 'bicubic-per-forward',
                 pos_embed_size=None,
                 class_embed_twice: bool = False,
                 pos_antialias: bool = True,
                 ln_eps: Optional[float] = None,
                 init_cfg=None):
        pos_mode, pos_size = check_pos_embed_mode(pos_embed_mode, pos_embed_size)
        if pos_mode == 'bilinear-once-crop':
            raise ValueError("pos_embed_mode='bilinear-once-crop' is the ResNet attention "
                             "pool's (DenseCLIP detection); use 'bilinear-once-trainable' "
                             'for ViTs')
        vision_overrides = None
        if drop_path_rate is not None:
            vision_overrides = dict(timm_drop_path=float(drop_path_rate))
        super().__init__(arch, pretrained, joint_outputs=joint_outputs,
                         freeze=freeze, strict=strict, quick_gelu=quick_gelu,
                         cache_dir=cache_dir, vision_overrides=vision_overrides,
                         init_cfg=init_cfg)
        self._setup_tower(drop_path_rate)
        if ln_eps is not None:
            for m in self.visual.modules():
                if isinstance(m, nn.LayerNorm):
                    m.eps = float(ln_eps)
        self.pos_antialias = bool(pos_antialias)
        if patch_pad not in ('corner', 'error'):
            raise ValueError(f"patch_pad must be 'corner' or 'error', got {patch_pad!r}")
        self.patch_pad = patch_pad
        self.pos_interp = pos_interp
        self.pos_embed_mode = pos_mode
        self.class_embed_twice = bool(class_embed_twice)
        if (pos_size is not None or self.class_embed_twice) and self.kind != 'openclip':
            raise NotImplementedError('pos_embed_mode / class_embed_twice (DenseCLIP) are '
                                      'implemented for open_clip ViTs only')
        if pos_size is not None:
            grid = (pos_size[0] // self.patch_size, pos_size[1] // self.patch_size)
            replace_with_resized_table(self.visual, 'positional_embedding', self.grid,
                                       grid, 1)
            self.grid = grid
        self.with_cp = with_cp
        self.fused_attention = bool(fused_attention)
        depth = len(self.blocks)
        if out_indices is None:
            out_indices = [depth * (i + 1) // 4 - 1 for i in range(4)] if depth >= 4 \
                else list(range(depth))
        self.out_indices = self._norm_indices(out_indices, depth, 'out_indices')
        if pyramid and len(self.out_indices) != 4:
            raise ValueError(f'pyramid=True needs 4 out_indices, got {self.out_indices}')
        self.vv_indices = ()
        if 'vv' in self.joint_outputs:
            self.vv_indices = self._norm_indices(
                range(depth) if vv_indices is None else vv_indices, depth, 'vv_indices')
        elif vv_indices is not None:
            raise ValueError("vv_indices is set but 'vv' is not in joint_outputs")
        if set(self.joint_outputs) & {'dense', 'value', 'vv', *LAST_BLOCK_PATHS} \
                and not self._tokens_projectable:
            raise NotImplementedError(
                f"'{self.arch}' pools with attention ({self._pool_desc}); per-token "
                "joint-space outputs ('dense', 'value', 'vv') are not defined for it")
        if set(self.joint_outputs) & {'value', 'keys', 'vv', *LAST_BLOCK_PATHS}:
            BlockOps(self.blocks[-1])  # fail at build time for unsupported blocks
        self.pyramid = SimpleFeaturePyramid(self.width, norm_cfg, pyramid_norm) \
            if pyramid else None
        n = len(self.out_indices)
        self.out_channels = [self.width] * n
        p = self.patch_size
        strides = [p / 4, p / 2, p, 2 * p] if pyramid else [p] * n
        self.strides = [int(r) if float(r).is_integer() else r for r in strides]
        self._finish_build()

    # ------------------------------------------------------------------
    def _setup_tower(self, drop_path_rate):
        from open_clip.transformer import VisionTransformer
        v = self.visual
        if isinstance(v, VisionTransformer):
            self.kind = 'openclip'
            self._drop_hooks = []
            if drop_path_rate:
                blocks = v.transformer.resblocks
                rates = torch.linspace(0, float(drop_path_rate), len(blocks),
                                       device='cpu').tolist()
                for blk, rate in zip(blocks, rates):
                    if rate > 0:
                        for ls in (blk.ls_1, blk.ls_2):
                            hook = _TokenDropPath(rate)
                            ls.register_forward_hook(hook)
                            self._drop_hooks.append(hook)
            self.width = v.transformer.width
            ps = v.patch_size
            self.grid = tuple(v.grid_size)
            self.num_prefix = 1
            self.batch_first = getattr(v.transformer, 'batch_first', True)
            self._tokens_projectable = v.attn_pool is None
            self._pool_desc = 'attentional pooler'
        elif type(v).__name__ == 'TimmModel' and type(v.trunk).__name__ == 'Eva':
            self.kind = 'eva'
            t = v.trunk
            if getattr(t, 'rope_mixed', False):
                raise NotImplementedError('EVA towers with mixed RoPE are not supported')
            if type(t.blocks[0]).__name__ != 'EvaBlock':
                raise NotImplementedError(f'{type(t.blocks[0]).__name__} blocks are not supported')
            self.width = t.embed_dim
            ps = t.patch_embed.patch_size
            self.grid = tuple(t.patch_embed.grid_size)
            self.num_prefix = t.num_prefix_tokens
            self.batch_first = True
            self._tokens_projectable = t.attn_pool is None and 'pool' not in dict(
                v.head.named_children())
            self._pool_desc = 'attention pooling head'
        else:
            trunk = getattr(v, 'trunk', None)
            raise ValueError(
                f"'{self.arch}' has a {type(v).__name__}"
                f"{'(' + type(trunk).__name__ + ')' if trunk is not None else ''} image "
                'tower; OpenCLIPViT supports open_clip VisionTransformer and timm Eva '
                'towers (use OpenCLIPResNet for CLIP ResNets)')
        ps = tuple(ps) if isinstance(ps, (tuple, list)) else (ps, ps)
        if ps[0] != ps[1]:
            raise NotImplementedError(f'non-square patches {ps} are not supported')
        self.patch_size = int(ps[0])

    @property
    def blocks(self) -> nn.ModuleList:
        """The tower's blocks (a view; registered under ``visual`` only)."""
        if self.kind == 'openclip':
            return self.visual.transformer.resblocks
        return self.visual.trunk.blocks

    @staticmethod
    def _norm_indices(indices, depth, what):
        out = []
        for i in indices:
            i = int(i)
            j = i + depth if i < 0 else i
            if not 0 <= j < depth:
                raise ValueError(f'{what}: block {i} out of range for {depth} blocks')
            out.append(j)
        if out != sorted(set(out)) or not out:
            raise ValueError(f'{what} must be non-empty, unique and increasing, '
                             f'got {list(indices)}')
        return tuple(out)

    def _unused_parameters(self):
        if self.joint_outputs:
            return []
        v = self.visual
        unused = [p for blk in self.blocks[self.out_indices[-1] + 1:]
                  for p in blk.parameters()]
        if self.kind == 'openclip':
            pools = (v.attn_pool, getattr(v, 'attn_pool_contrastive', None))
            head = [v.ln_post] + [m for m in pools if m is not None]
            unused += [p for m in head for p in m.parameters()]
            if v.proj is not None:
                unused.append(v.proj)
        else:
            t = v.trunk
            head = [t.norm, t.fc_norm, t.head, v.head]
            if t.attn_pool is not None:
                head.append(t.attn_pool)
            unused += [p for m in head for p in m.parameters()]
        return unused

    def _new_modules(self):
        return [self.pyramid] if self.pyramid is not None else []

    # ------------------------------------------------------------------
    def pos_table(self, gh: int, gw: int) -> torch.Tensor:
        """Positional table for a ``gh x gw`` token grid, ``(prefix + gh*gw, C)``
        (prefix rows only where the tower embeds them), cached per size."""
        if self.kind == 'openclip':
            table = self.visual.positional_embedding
            prefix = 1
        else:
            t = self.visual.trunk
            table = t.pos_embed[0]
            prefix = 0 if t.no_embed_class else t.num_prefix_tokens
        if (gh, gw) == self.grid:
            return table
        mode, aa = self.pos_interp, self.pos_antialias
        if self.pos_embed_mode == 'bilinear-once-trainable':
            mode, aa = 'bilinear', False
        return self._size_cache.get(
            ('pos', gh, gw), table,
            lambda: resize_pos_table(table, self.grid, (gh, gw), prefix, mode, antialias=aa))

    def _rope(self, gh: int, gw: int):
        rope = self.visual.trunk.rope
        if rope is None:
            return None
        ref = getattr(rope, 'pos_embed', None)
        if ref is None:  # 'bands' mode computes any shape itself
            return rope.get_embed(shape=[gh, gw])
        if (gh, gw) == self.grid:
            return rope.get_embed()

        def compute():
            # timm's public way to another grid mutates the module: use a copy
            other = copy.deepcopy(rope).eval()
            other.update_feat_shape([gh, gw])
            return other.get_embed()

        return self._size_cache.get(('rope', gh, gw), ref, compute)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        h, w = x.shape[-2:]
        ph, pw = (-h) % p, (-w) % p
        if ph or pw:
            if self.patch_pad == 'error':
                raise ValueError(
                    f'input {h}x{w} is not a multiple of the patch size {p}; resize/crop '
                    f"it (e.g. to {h + ph}x{w + pw}) or use patch_pad='corner'")
            x = F.pad(x, (0, pw, 0, ph))
        return x

    def _embed(self, x: torch.Tensor):
        """Tokens ``(B, prefix + gh*gw, C)`` after the tower's pre-block
        steps, the grid size, and EVA's rotary table (or None)."""
        if self.kind == 'openclip':
            v = self.visual
            x = v.conv1(x)
            b, c, gh, gw = x.shape
            x = x.reshape(b, c, gh * gw).permute(0, 2, 1)
            cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(b, -1, -1)
            x = torch.cat([cls, x], dim=1)
            x = x + self.pos_table(gh, gw).to(x.dtype)
            if self.class_embed_twice:
                x = torch.cat([x[:, :1] + cls[:, :1], x[:, 1:]], dim=1)
            return v.ln_pre(x), (gh, gw), None
        t = self.visual.trunk
        pe = t.patch_embed
        x = pe.proj(x)
        b, c, gh, gw = x.shape
        x = pe.norm(x.flatten(2).transpose(1, 2))
        to_cat = []
        if t.cls_token is not None:
            to_cat.append(t.cls_token.expand(b, -1, -1))
        if t.reg_token is not None:
            to_cat.append(t.reg_token.expand(b, -1, -1))
        pos = self.pos_table(gh, gw) if t.pos_embed is not None else None
        if t.no_embed_class:
            if pos is not None:
                x = x + pos.to(x.dtype)
            x = torch.cat(to_cat + [x], dim=1) if to_cat else x
        else:
            x = torch.cat(to_cat + [x], dim=1) if to_cat else x
            if pos is not None:
                x = x + pos.to(x.dtype)
        x = t.pos_drop(x)
        return t.norm_pre(x), (gh, gw), self._rope(gh, gw)

    def _block(self, i: int, x: torch.Tensor, rope) -> torch.Tensor:
        blk = self.blocks[i]
        if self.kind == 'eva':
            fn = (lambda y: blk(y, rope=rope))
        elif self.fused_attention and type(blk).__name__ == 'ResidualAttentionBlock' \
                and not hasattr(blk, 'ln_1_kv') and not _cpu_reduced_precision(x):
            fn = BlockOps(blk).forward  # batch-first, fused SDPA attention
        elif self.batch_first:
            fn = blk
        else:
            fn = (lambda y: blk(y.transpose(0, 1)).transpose(0, 1))
        if self.kind == 'openclip' and self._drop_hooks:
            # token axis of the layout the block runs in (see _TokenDropPath)
            seq_first = not self.batch_first and not isinstance(
                getattr(fn, '__self__', None), BlockOps)
            for hook in self._drop_hooks:
                hook.token_dim = 0 if seq_first else 1
        if self.with_cp and self.training and x.requires_grad:
            return checkpoint(fn, x, use_reentrant=False)
        return fn(x)

    def project_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final norm + projection of tokens ``(B, N, C)`` -> ``(B, N, D)``."""
        v = self.visual
        if self.kind == 'openclip':
            t = v.ln_post(tokens)
            return t @ v.proj if v.proj is not None else t
        t = v.trunk
        return v.head(t.head(t.fc_norm(t.norm(tokens))))

    def _global(self, x: torch.Tensor) -> torch.Tensor:
        v = self.visual
        if self.kind == 'openclip':
            pooled, _ = v._pool(x)
            return pooled @ v.proj if v.proj is not None else pooled
        t = v.trunk
        return v.head(t.forward_head(t.norm(x)))

    def _to_map(self, tokens: torch.Tensor, grid) -> torch.Tensor:
        b, _, c = tokens.shape
        return tokens[:, self.num_prefix:].transpose(1, 2).reshape(b, c, *grid)

    def forward(self, x: torch.Tensor):
        """Run the tower.

        Args:
            x (Tensor): images ``(B, 3, H, W)`` with ``H, W >= patch``.

        Returns:
            tuple: with ``gh, gw = ceil(H/p), ceil(W/p)`` (``H/p, W/p`` when
            divisible), ``C`` the width, ``D = embed_dim``:

            * ``pyramid=True``: 4 maps ``(B, C, 4gh, 4gw)``, ``(B, C, 2gh,
              2gw)``, ``(B, C, gh, gw)``, ``(B, C, gh//2, gw//2)``;
            * ``pyramid=False``: one ``(B, C, gh, gw)`` map per tap.

            When ``joint_outputs`` is set, a dict (keys in
            ``joint_outputs`` order) follows as the last element
            (``*feats, joint = backbone(img)``): ``'global'`` ``(B, D)``;
            ``'dense'`` and ``'value'`` ``(B, D, gh, gw)``; ``'keys'``
            ``(B, C, gh, gw)``; ``'vv'`` a tuple of ``(B, D, gh, gw)``, one
            per tap.
        """
        self._check_image(x, self.patch_size, 'one patch')
        x = self._pad(x)
        x, grid, rope = self._embed(x)
        joint_req = set(self.joint_outputs)
        depth = len(self.blocks)
        last = depth - 1 if joint_req else self.out_indices[-1]
        taps, vv_taps = [], []
        x_vv = None
        joint: Dict[str, object] = {}
        for i in range(last + 1):
            if i == depth - 1 and joint_req & {'value', 'keys'}:
                if 'value' in joint_req:
                    joint['value'] = self._to_map(
                        self.project_tokens(BlockOps(self.blocks[i]).value_path(x)), grid)
                if 'keys' in joint_req:
                    joint['keys'] = self._to_map(BlockOps(self.blocks[i]).keys(x), grid)
            for name in joint_req.intersection(LAST_BLOCK_PATHS) if i == depth - 1 else ():
                tokens = LAST_BLOCK_PATHS[name](BlockOps(self.blocks[i]), x)
                joint[name] = self._to_map(self.project_tokens(tokens), grid)
            if i in self.vv_indices:
                x_vv = vv_dual_path_step(BlockOps(self.blocks[i]), x, x_vv)
            x = self._block(i, x, rope)
            if i in self.out_indices:
                taps.append(x)
                if 'vv' in joint_req:
                    vv_taps.append(x if x_vv is None else x_vv)
        feats = [self._to_map(t, grid) for t in taps]
        feats = tuple(self.pyramid(feats)) if self.pyramid is not None else tuple(feats)
        if not joint_req:
            return feats
        if 'global' in joint_req:
            joint['global'] = self._global(x)
        if 'dense' in joint_req:
            joint['dense'] = self._to_map(self.project_tokens(x), grid)
        if 'vv' in joint_req:
            joint['vv'] = tuple(self._to_map(self.project_tokens(t), grid) for t in vv_taps)
        ordered = {k: joint[k] for k in self.joint_outputs}
        return feats + (ordered,)

    @staticmethod
    def grid_size(h: int, w: int, patch: int):
        """Token grid of an ``h x w`` input with corner padding."""
        return math.ceil(h / patch), math.ceil(w / patch)
