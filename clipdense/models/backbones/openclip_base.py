"""Shared construction of clipdense's open_clip image backbones."""
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule

from ..utils.clip_loading import create_open_clip, load_tower_weights
from ..utils.freezing import (apply_freeze, check_freeze_mode,
                              set_batchnorm_eval)
from ..utils.pos_embed import SizeCache


class OpenCLIPVisualBase(BaseModule):
    """Builds an open_clip model, loads its image tower and keeps only it.

    Subclasses set ``JOINT_OUTPUTS`` and check the tower type. The tower is
    stored as ``self.visual``, so the backbone's state dict uses open_clip's
    key space (``visual.*``) and a full open_clip checkpoint loads into it
    unchanged.

    ``init_weights()`` never touches the tower: it was initialised by
    open_clip (random) or by ``pretrained`` in ``__init__``, and MMEngine's
    runner calls ``init_weights()`` after building. Only modules that
    clipdense adds (see :meth:`_new_modules`) are initialised there.
    """

    JOINT_OUTPUTS: Tuple[str, ...] = ()

    def __init__(self, arch: str, pretrained: Optional[str], *,
                 joint_outputs: Sequence[str] = (),
                 freeze: str = 'none',
                 norm_eval: bool = False,
                 strict: bool = True,
                 quick_gelu: Optional[bool] = None,
                 cache_dir: Optional[str] = None,
                 vision_overrides: Optional[Dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg=None)
        # init_cfg applies to the clipdense-owned modules only (see init_weights)
        self._new_init_cfg = init_cfg
        self.freeze = check_freeze_mode(freeze)
        self.norm_eval = bool(norm_eval)
        self.joint_outputs = self._check_joint_outputs(joint_outputs)
        model, state_dict, source = create_open_clip(
            arch, pretrained, quick_gelu=quick_gelu, cache_dir=cache_dir,
            vision_overrides=vision_overrides)
        import open_clip
        self.arch = arch.replace('/', '-')
        self.embed_dim = int(open_clip.get_model_config(self.arch)['embed_dim'])
        self.pretrained = pretrained
        self.load_report = None
        if state_dict is not None:
            self.load_report = load_tower_weights(
                model, state_dict, 'visual', strict=strict,
                source=source.path, arch=self.arch)
        self.weights_loaded = state_dict is not None
        self.visual = model.visual
        del model  # the text tower is not needed here
        self._size_cache = SizeCache()

    # ------------------------------------------------------------------
    @classmethod
    def _check_joint_outputs(cls, joint_outputs) -> Tuple[str, ...]:
        if isinstance(joint_outputs, str):
            joint_outputs = (joint_outputs,)
        joint_outputs = tuple(joint_outputs or ())
        bad = [j for j in joint_outputs if j not in cls.JOINT_OUTPUTS]
        if bad:
            raise ValueError(f'{cls.__name__}: unknown joint_outputs {bad}; '
                             f'choose from {cls.JOINT_OUTPUTS}')
        if len(set(joint_outputs)) != len(joint_outputs):
            raise ValueError(f'{cls.__name__}: joint_outputs repeats an entry')
        return joint_outputs

    def _finish_build(self):
        """Apply freezing once all modules exist (new modules stay trainable).

        Parameters the configured outputs never use (the pooling head when
        no joint-space output is requested, blocks after the last tap) are
        frozen too: they get no gradient anyway, and DDP then does not need
        ``find_unused_parameters``.
        """
        apply_freeze(self.visual, self.freeze)
        for p in self._unused_parameters():
            p.requires_grad_(False)

    def _unused_parameters(self):
        return []

    def _new_modules(self):
        """Modules clipdense adds on top of the tower (initialised by
        :meth:`init_weights`)."""
        return []

    def init_weights(self):
        """Initialise clipdense-owned modules only; the CLIP tower keeps its
        (loaded) weights."""
        for m in self._new_modules():
            if self._new_init_cfg is not None and isinstance(m, BaseModule) \
                    and m.init_cfg is None:
                m.init_cfg = self._new_init_cfg
            if hasattr(m, 'init_weights'):
                m.init_weights()
        self._is_init = True

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            if self.freeze == 'all':
                # a frozen tower also keeps BN statistics and stochastic
                # depth/dropout off
                self.visual.eval()
            elif self.norm_eval:
                set_batchnorm_eval(self.visual)
        return self

    @staticmethod
    def _check_image(x: torch.Tensor, min_hw: int, what: str):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
            raise ValueError(f'expected images of shape (B, 3, H, W), got {shape}')
        h, w = x.shape[-2:]
        if h < min_hw or w < min_hw:
            raise ValueError(f'input {h}x{w} is smaller than {what} '
                             f'({min_hw}x{min_hw} pixels)')
