"""Common parts of clipdense's zero-shot anomaly detectors (AnoVL,
WinCLIP): data flow, modes, class names, packing of the predictions."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData

from clipdense.registry import MODELS


class ZeroShotAnomalyDetector(BaseModel):
    """Base of training-free anomaly detectors over a CLIP image tower.

    Subclasses implement :meth:`score` (maps at the token grid and image
    scores). This class handles:

    * the modes of ``forward``: ``'predict'`` (data samples with
      ``pred_anomaly_map``, a ``PixelData`` ``(1, H, W)`` at the input size,
      and ``pred_score``), ``'tensor'`` (the maps ``(B, 1, H, W)``) and
      ``'loss'``, which raises: these models have nothing to train (run
      ``tools/test.py CONFIG none``);
    * the class name each image's prompts use: ``cls_name`` of its data
      sample (set by :class:`MVTecADDataset` / :class:`VisADataset`), or
      ``class_name`` given here (e.g. by the demo).

    Args:
        backbone (dict): an ``OpenCLIPResNet`` / ``OpenCLIPViT`` config.
        data_preprocessor (dict, optional): e.g. ``SegDataPreProcessor``
            with CLIP's mean/std.
        class_name (str, optional): prompt name used for every image
            (overrides the data samples').
        align_corners (bool): of the bilinear upsampling of the maps to the
            input size (AnoVL's code: ``True``).
        init_cfg: unused (all weights come from ``pretrained``).
    """

    def __init__(self, backbone: dict, *, data_preprocessor: Optional[dict] = None,
                 class_name: Optional[str] = None, align_corners: bool = False,
                 train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.align_corners = bool(align_corners)
        self.backbone = MODELS.build(backbone)
        self.is_resnet = hasattr(self.backbone.visual, 'attnpool')
        self.class_name = class_name
        for p in self.backbone.parameters():
            p.requires_grad_(False)  # the tower is never trained here

    # ------------------------------------------------------------------
    def class_names(self, data_samples, batch_size: int) -> List[str]:
        if self.class_name is not None:
            return [self.class_name] * batch_size
        if data_samples is None:
            raise ValueError(f'{type(self).__name__} needs the class name of each image '
                             "for its prompts: give data samples with 'cls_name' metainfo "
                             '(MVTecADDataset/VisADataset set it) or build the model with '
                             "class_name='bottle'")
        names = []
        for ds in data_samples:
            name = ds.metainfo.get('cls_name', ds.metainfo.get('category'))
            if name is None:
                raise ValueError(f"data sample {ds.metainfo.get('img_path')} has no "
                                 "'cls_name' (or 'category') metainfo; use "
                                 "PackAnomalyInputs or set the model's class_name")
            names.append(str(name))
        return names

    def backbone_forward(self, img: torch.Tensor):
        """Run the tower; returns ``(feats, joint)``."""
        out = self.backbone(img)
        if not isinstance(out[-1], dict):
            raise ValueError(f'{type(self).__name__}: the backbone returns no joint-space '
                             "outputs; set joint_outputs (e.g. ('global', 'vv'))")
        return out[:-1], out[-1]

    def score(self, img: torch.Tensor, cls_names: Sequence[str]
              ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Anomaly maps ``(B, 1, h, w)`` and image scores ``(B,)``."""
        raise NotImplementedError

    def _maps(self, inputs, data_samples):
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            raise ValueError('expected a batch of images (B, 3, H, W); got '
                             f'{type(inputs).__name__}'
                             + (f' {tuple(inputs.shape)}' if hasattr(inputs, 'shape') else ''))
        names = self.class_names(data_samples, inputs.shape[0])
        amap, scores = self.score(inputs, names)
        if amap.shape[-2:] != inputs.shape[-2:]:
            amap = F.interpolate(amap.float(), size=inputs.shape[-2:], mode='bilinear',
                                 align_corners=self.align_corners)
        return amap, scores

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            raise RuntimeError(
                f'{type(self).__name__} is zero-shot and training-free: there is no loss. '
                "Evaluate it with tools/test.py CONFIG none (AnoVL's test-time "
                'adaptation runs inside predict)')
        if mode == 'tensor':
            return self._maps(inputs, data_samples)[0]
        if mode != 'predict':
            raise ValueError(f"invalid mode {mode!r}; use 'predict', 'tensor' or 'loss'")
        amap, scores = self._maps(inputs, data_samples)
        if data_samples is None:
            from mmseg.structures import SegDataSample
            data_samples = [SegDataSample(metainfo=dict(img_shape=inputs.shape[-2:]))
                            for _ in range(inputs.shape[0])]
        for i, ds in enumerate(data_samples):
            h, w = ds.metainfo.get('img_shape', inputs.shape[-2:])
            ds.set_data(dict(pred_anomaly_map=PixelData(data=amap[i, :, :h, :w])))
            ds.set_field(scores[i].detach() if scores is not None
                         else amap[i].amax().detach(), 'pred_score')
        return data_samples
