"""AnoVL: training-free V-V attention features + domain-aware state prompts
+ optional per-image test-time adaptation."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from clipdense.registry import MODELS
from ..utils.anomaly_features import VIEW_STYLES, anovl_views, attnpool_vv
from .anomaly_base import ZeroShotAnomalyDetector

FEATURE_PATHS = ('vv', 'dense', 'value')
IMAGE_VIEWS = ('anovl', 'single', 'tiles')


@MODELS.register_module()
class AnoVLDetector(ZeroShotAnomalyDetector):
    """Zero-shot anomaly localisation of AnoVL (Deng et al., arXiv
    2308.15939; code hq-deng/AnoVL), with each part switchable so that
    "CLIP baseline / training-free (TFA) / + test-time adaptation (TTA)" are
    three configs.

    Patch tokens (``feature_path``):

    * ``'vv'``: the V-V attention dual path (Sec. 3.1). For a ViT the
      backbone's ``'vv'`` output (``OpenCLIPViT(joint_outputs=('global',
      'vv'))``), tap ``vv_tap`` (default the last: AnoVL's output index 6 =
      V-V path after block 12); for a CLIP ResNet the V-V attention of the
      attention pool on the last stage (:func:`attnpool_vv`).
    * ``'dense'``: plain CLIP patch tokens (the baseline: q-k attention).
    * ``'value'``: MaskCLIP's value path (for comparison).

    Image score (``image_views``): ``'anovl'`` averages ``p_a`` of the
    global embedding over the 22 views of :func:`anovl_views` (made the
    authors' way or clipdense's, ``view_style``); ``'single'`` uses the
    image alone; ``'tiles'`` is AnoVL's VisA protocol (``vis_test.py``):
    a non-square input (short side resized to the model size by the
    pipeline) is scored as two square tiles at its two ends, the image
    score is the mean of the tiles' and the maps of the tiles, each
    upsampled to the tile size, are put back and averaged where they
    overlap; the test-time adapter is trained on the tokens of both tiles
    together. The global embedding is always the original q-k path (AnoVL
    overwrites the V-V CLS with it).

    Args:
        backbone (dict): ``OpenCLIPResNet`` (``out_indices`` ending with 3,
            ``joint_outputs`` with ``'global'``, plus ``'dense'`` /
            ``'value'`` for those paths) or ``OpenCLIPViT``
            (``pyramid=False``, ``joint_outputs`` with ``'global'`` and the
            path).
        head (dict): an :class:`AnoVLHead` config.
        feature_path (str): see above.
        vv_tap (int): which ViT ``vv`` tap to use.
        image_views (str): see above.
        view_style (str): ``'authors'`` or ``'clipdense'`` (see
            :func:`anovl_views`).
        data_preprocessor, class_name, align_corners, init_cfg: see
            :class:`ZeroShotAnomalyDetector`.
    """

    def __init__(self, backbone: dict, head: dict, *, feature_path: str = 'vv',
                 vv_tap: int = -1, image_views: str = 'anovl',
                 view_style: str = 'clipdense',
                 data_preprocessor: Optional[dict] = None,
                 class_name: Optional[str] = None, align_corners: bool = False,
                 train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(backbone, data_preprocessor=data_preprocessor,
                         class_name=class_name, align_corners=align_corners,
                         init_cfg=init_cfg)
        if view_style not in VIEW_STYLES:
            raise ValueError(f'view_style must be one of {VIEW_STYLES}, got {view_style!r}')
        self.view_style = view_style
        if feature_path not in FEATURE_PATHS:
            raise ValueError(f'feature_path must be one of {FEATURE_PATHS}, got {feature_path!r}')
        if image_views not in IMAGE_VIEWS:
            raise ValueError(f'image_views must be one of {IMAGE_VIEWS}, got {image_views!r}')
        self.feature_path = feature_path
        self.vv_tap = int(vv_tap)
        self.image_views = image_views
        self.head = MODELS.build(head)
        joint = tuple(self.backbone.joint_outputs)
        name = type(self.backbone).__name__
        if 'global' not in joint:
            raise ValueError(f"AnoVLDetector: the backbone's joint_outputs {joint} lack "
                             "'global' (the image score uses it); add it")
        if self.is_resnet and feature_path == 'vv':
            if self.backbone.out_indices[-1] != 3:
                raise ValueError('AnoVLDetector: V-V attention on a ResNet reads the last '
                                 'stage; set out_indices=(3, ) on the backbone')
        elif feature_path not in joint:
            raise ValueError(f"AnoVLDetector: feature_path={feature_path!r} needs "
                             f"'{feature_path}' in the {name}'s joint_outputs (got {joint})")
        if self.head.text_encoder.embed_dim != self.backbone.embed_dim:
            raise ValueError(f'text encoder dim {self.head.text_encoder.embed_dim} != image '
                             f'tower dim {self.backbone.embed_dim}: use the same CLIP arch')

    def features(self, img: torch.Tensor):
        """Patch tokens ``(B, D, h, w)`` of ``img`` and global embeddings
        ``(B, V, D)`` of its views."""
        b = img.shape[0]
        if self.image_views == 'anovl':
            mean = getattr(self.data_preprocessor, 'mean', None)
            std = getattr(self.data_preprocessor, 'std', None)
            if mean is None or std is None:
                mean = torch.zeros(3, device=img.device)
                std = torch.ones(3, device=img.device)
            views = anovl_views(img, mean.flatten()[:3], std.flatten()[:3],
                                style=self.view_style)
        else:
            views = img[None]
        nv = views.shape[0]
        feats, joint = self.backbone_forward(views.reshape(nv * b, *img.shape[1:]))
        glob = joint['global'].reshape(nv, b, -1).transpose(0, 1)
        if self.feature_path == 'vv' and self.is_resnet:
            c5 = feats[-1][:b]
            tokens = attnpool_vv(self.backbone.visual.attnpool, c5,
                                 self.backbone.pos_table(*c5.shape[-2:]))
        elif self.feature_path == 'vv':
            tokens = joint['vv'][self.vv_tap][:b]
        else:
            tokens = joint[self.feature_path][:b]
        return tokens, glob

    @staticmethod
    def _tile_bounds(h: int, w: int):
        """Offsets of the two square tiles (side ``min(h, w)``) at the ends
        of the long side, and whether it is the width."""
        side = min(h, w)
        return side, max(h, w) - side, w >= h

    def _tiles(self, img: torch.Tensor) -> torch.Tensor:
        """``(2B, 3, s, s)``: the first tiles of all images, then the second."""
        s, off, wide = self._tile_bounds(*img.shape[-2:])
        if wide:
            return torch.cat([img[..., :, :s], img[..., :, off:off + s]])
        return torch.cat([img[..., :s, :], img[..., off:off + s, :]])

    def _untile(self, maps: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Put two tile maps ``(2B, 1, s, s)`` back into ``(B, 1, h, w)``,
        averaging where they overlap (AnoVL's ``image_recover``)."""
        s, off, wide = self._tile_bounds(h, w)
        b = maps.shape[0] // 2
        first, second = maps[:b], maps[b:]
        if not wide:
            first, second = first.transpose(-1, -2), second.transpose(-1, -2)
        out = maps.new_zeros(b, 1, s, off + s)
        count = maps.new_zeros(1, 1, 1, off + s)
        out[..., :s] += first
        out[..., off:] += second
        count[..., :s] += 1
        count[..., off:] += 1
        out = out / count
        return out if wide else out.transpose(-1, -2)

    def _score_tiles(self, img: torch.Tensor, cls_names: Sequence[str]):
        b, _, h, w = img.shape
        tiles = self._tiles(img)
        s = tiles.shape[-1]
        feats, joint = self.backbone_forward(tiles)
        glob = joint['global'].reshape(2, b, -1).transpose(0, 1)  # (B, 2, D)
        if self.feature_path == 'vv' and self.is_resnet:
            c5 = feats[-1]
            tokens = attnpool_vv(self.backbone.visual.attnpool, c5,
                                 self.backbone.pos_table(*c5.shape[-2:]))
        elif self.feature_path == 'vv':
            tokens = joint['vv'][self.vv_tap]
        else:
            tokens = joint[self.feature_path]
        texts = self.head.texts(cls_names)
        # the two tiles of an image side by side: one adaptation per image
        pair = torch.cat([tokens[:b], tokens[b:]], dim=-1)  # (B, D, gh, 2gw)
        probs = self.head.patch_probs(pair, texts, cls_names)
        gw = tokens.shape[-1]
        tile_maps = torch.cat([probs[..., :gw], probs[..., gw:]])  # (2B, 1, gh, gw)
        tile_maps = F.interpolate(self.head.smooth(tile_maps), size=(s, s), mode='bilinear',
                                  align_corners=self.align_corners)
        return self._untile(tile_maps, h, w), self.head.image_scores(glob, texts)

    def score(self, img: torch.Tensor, cls_names: Sequence[str]):
        if self.image_views == 'tiles':
            return self._score_tiles(img, cls_names)
        tokens, glob = self.features(img)
        texts = self.head.texts(cls_names)
        return self.head(tokens, texts, glob, cls_names)
