"""open_clip's modified ResNet (RN50, RN101, RN50x4/x16/x64) as an mm backbone."""
from typing import Optional, Sequence

import torch

from clipdense.registry import MODELS
from ..utils.anomaly_features import attnpool_vv
from ..utils.dense_attention import attnpool_dense, attnpool_value
from ..utils.pos_embed import (check_pos_embed_mode, crop_pos_table,
                               replace_with_resized_table, resize_pos_table)
from .openclip_base import OpenCLIPVisualBase


@MODELS.register_module()
class OpenCLIPResNet(OpenCLIPVisualBase):
    """CLIP ResNet image tower of open_clip with dense joint-space outputs.

    Wraps ``open_clip.create_model(arch).visual`` (``ModifiedResNet``: 3-conv
    stem, anti-aliased strided bottlenecks, attention pool; Radford et al.,
    2021). The four stage maps feed mm necks (FPN) as any ResNet does; the
    optional joint-space outputs are the ones CLIP dense-prediction methods
    read:

    * ``'global'``: the attention-pooled image embedding. At the trained
      input size it equals ``model.encode_image``; at other sizes the
      positional table is interpolated (see below).
    * ``'dense'``: DenseCLIP's per-pixel embeddings (Rao et al., CVPR 2022,
      Sec. 3.2): the attention pool run with every position as a query and
      the positional table interpolated to the feature size.
    * ``'value'``: MaskCLIP's dense features (Zhou et al., ECCV 2022,
      Sec. 3.1): ``c_proj(v_proj(x))`` per position, query/key and the
      positional table dropped.
    * ``'keys'``: the attention pool's keys ``k_proj(x)`` per position, what
      MaskCLIP's key smoothing compares for its ResNets.
    * ``'vv'``: the V-V attention of CLIP Surgery / AnoVL (Deng et al.,
      2023) over the attention pool, ``c_proj(softmax(v v^T) v)`` with the
      positional table; a one-element tuple, as the ViT's one-per-tap tuple.

    Any input of at least 32x32 works, non-square included. The attention
    pool's positional table is fitted to the C5 size as ``pos_embed_mode``
    says:

    * ``'bicubic-per-forward'`` (default, clipdense): CLIP's table stays at
      its trained grid (``image_size // 32``) and is resized (``pos_interp``,
      bicubic) to each C5 size, once per size and cached (again each forward
      only while it is being trained).
    * ``'bilinear-once-trainable'`` (DenseCLIP segmentation, the authors'
      ``CLIPResNetWithAttention``): at build time the table is resized once,
      bilinearly, to ``pos_embed_size // 32`` and that table is the
      parameter (trained, saved, in released checkpoints); each forward
      resizes it bilinearly (no antialias) to the C5 size when different.
    * ``'bilinear-once-crop'`` (DenseCLIP detection): as above, built for a
      large ``pos_embed_size`` (1344), and each forward takes the table's
      top-left ``[:h, :w]`` corner.

    Sizes that are not multiples of 32 are floored by the stride-2 average
    pools, as in CLIP.

    Args:
        arch (str): open_clip architecture with a ResNet image tower
            (``'RN50'``, ``'RN101'``, ``'RN50x16'``, ...).
        pretrained (str, optional): open_clip tag (``'openai'``, ...), a
            local open_clip checkpoint, OpenAI TorchScript archive or
            ``.safetensors`` file; ``None`` keeps open_clip's random init.
            See :mod:`clipdense.models.utils.clip_loading`.
        out_indices (Sequence[int]): stages (0-3) whose maps are returned.
        joint_outputs (Sequence[str]): any of ``'global'``, ``'dense'``,
            ``'value'``, ``'keys'``, ``'vv'``.
        freeze (str): ``'none'``, ``'all'`` (tower frozen, BN statistics
            fixed) or ``'all_but_norms'`` (only BN layers and the positional
            table trainable).
        norm_eval (bool): keep BN statistics fixed in training even when
            the tower is trainable (mmdet's ``norm_eval``).
        strict (bool): refuse weights of another architecture (counts of
            missing/unexpected keys); ``False`` loads what matches.
        quick_gelu (bool, optional): QuickGELU override (no effect on the
            ResNet tower itself; kept for symmetry with the text encoder).
        cache_dir (str, optional): where tag weights are looked for.
        pos_interp (str): interpolation mode of the positional table with
            ``pos_embed_mode='bicubic-per-forward'``.
        pos_embed_mode (str): see above.
        pos_embed_size (int | tuple, optional): training input size (pixels)
            of the ``'bilinear-once-*'`` modes.
        init_cfg (dict, optional): unused by the tower (never
            re-initialised); accepted for mm configs.

    Attributes:
        out_channels (list[int]): channels of the returned stage maps.
        strides (list[int]): their strides.
        embed_dim (int): joint-space dimension ``D``.
    """

    JOINT_OUTPUTS = ('global', 'dense', 'value', 'keys', 'vv')

    def __init__(self, arch: str = 'RN50', pretrained: Optional[str] = None, *,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 joint_outputs: Sequence[str] = (),
                 freeze: str = 'none',
                 norm_eval: bool = False,
                 strict: bool = True,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None,
                 pos_interp: str = 'bicubic',
                 pos_embed_mode: str = 'bicubic-per-forward',
                 pos_embed_size=None,
                 init_cfg=None):
        pos_mode, pos_size = check_pos_embed_mode(pos_embed_mode, pos_embed_size)
        super().__init__(arch, pretrained, joint_outputs=joint_outputs,
                         freeze=freeze, norm_eval=norm_eval, strict=strict,
                         quick_gelu=quick_gelu, cache_dir=cache_dir,
                         init_cfg=init_cfg)
        from open_clip.modified_resnet import ModifiedResNet
        if not isinstance(self.visual, ModifiedResNet):
            raise ValueError(
                f"'{self.arch}' has a {type(self.visual).__name__} image tower, "
                'not a CLIP ResNet; use OpenCLIPViT for ViT/EVA architectures')
        out_indices = tuple(int(i) for i in out_indices)
        if not out_indices or any(i not in range(4) for i in out_indices) or \
                list(out_indices) != sorted(set(out_indices)):
            raise ValueError(f'out_indices must be increasing stage indices in 0..3, '
                             f'got {out_indices}')
        self.out_indices = out_indices
        self.pos_interp = pos_interp
        self.pos_embed_mode = pos_mode
        stages = [self.visual.layer1, self.visual.layer2, self.visual.layer3,
                  self.visual.layer4]
        self.out_channels = [stages[i][-1].conv3.out_channels for i in out_indices]
        self.strides = [4 * 2 ** i for i in out_indices]
        table = self.visual.attnpool.positional_embedding
        side = int(round((table.shape[0] - 1) ** 0.5))
        self.pos_grid = (side, side)
        if pos_size is not None:
            grid = (pos_size[0] // 32, pos_size[1] // 32)
            replace_with_resized_table(self.visual.attnpool, 'positional_embedding',
                                       self.pos_grid, grid, 1)
            self.pos_grid = grid
        self._finish_build()

    def _unused_parameters(self):
        v = self.visual
        stages = [v.layer1, v.layer2, v.layer3, v.layer4]
        unused = [] if self.joint_outputs else list(v.attnpool.parameters())
        last = 3 if self.joint_outputs else self.out_indices[-1]
        for stage in stages[last + 1:]:
            unused.extend(stage.parameters())
        return unused

    def pos_table(self, h: int, w: int) -> torch.Tensor:
        """Attention-pool positional table for a ``h x w`` C5 map,
        ``(1 + h*w, C5)``, cached per size."""
        table = self.visual.attnpool.positional_embedding
        if (h, w) == self.pos_grid:
            return table
        if self.pos_embed_mode == 'bilinear-once-crop':
            return crop_pos_table(table, self.pos_grid, (h, w), 1)
        if self.pos_embed_mode == 'bilinear-once-trainable':
            mode, aa = 'bilinear', False
        else:
            mode, aa = self.pos_interp, True
        return self._size_cache.get(
            ('attnpool', h, w), table,
            lambda: resize_pos_table(table, self.pos_grid, (h, w), 1, mode, antialias=aa))

    def forward(self, x: torch.Tensor):
        """Run the tower.

        Args:
            x (Tensor): images ``(B, 3, H, W)``, ``H, W >= 32``.

        Returns:
            tuple: one map per ``out_indices`` entry, stage ``i`` being
            ``(B, 4*width*2**i, H_i, W_i)`` at stride ``4*2**i`` (for RN50:
            256/512/1024/2048 channels), ``H_i = H // 2**(i+2)`` for sizes
            that are multiples of 32. When ``joint_outputs`` is set, a dict
            (keys in ``joint_outputs`` order) follows as the last element
            (``*feats, joint = backbone(img)``), with (``D = embed_dim``,
            ``h, w`` = C5 size ``H//32, W//32``):

            * ``'global'``: ``(B, D)``
            * ``'dense'``: ``(B, D, h, w)``
            * ``'value'``: ``(B, D, h, w)``
            * ``'keys'``: ``(B, C, h, w)``, ``C`` the C5 width
            * ``'vv'``: a one-element tuple of ``(B, D, h, w)``
        """
        self._check_image(x, 32, 'the ResNet stride')
        v = self.visual
        x = v.stem(x)
        feats = []
        last = 3 if self.joint_outputs else self.out_indices[-1]
        for i, layer in enumerate((v.layer1, v.layer2, v.layer3, v.layer4)):
            x = layer(x)
            if i in self.out_indices:
                feats.append(x)
            if i == last:
                break
        if not self.joint_outputs:
            return tuple(feats)
        joint = {}
        if 'global' in self.joint_outputs or 'dense' in self.joint_outputs:
            glob, dense = attnpool_dense(v.attnpool, x, self.pos_table(*x.shape[-2:]))
            if 'global' in self.joint_outputs:
                joint['global'] = glob
            if 'dense' in self.joint_outputs:
                joint['dense'] = dense
        if 'value' in self.joint_outputs:
            joint['value'] = attnpool_value(v.attnpool, x)
        if 'keys' in self.joint_outputs:
            joint['keys'] = v.attnpool.k_proj(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        if 'vv' in self.joint_outputs:
            joint['vv'] = (attnpool_vv(v.attnpool, x, self.pos_table(*x.shape[-2:])), )
        return tuple(feats) + ({k: joint[k] for k in self.joint_outputs},)
