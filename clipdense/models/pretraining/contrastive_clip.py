"""Contrastive image-text training of an open_clip model through MMEngine.

CLIP (Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021): a symmetric cross-entropy over the cosine
similarities of a batch of image and caption embeddings, scaled by a learned
temperature. Used to train the synthetic world's tiny CLIP from scratch and,
later, to fine-tune CLIP on mask-noun pairs (OVSeg). The wrapped model keeps
open_clip's key space, so :func:`export_open_clip_state_dict` turns a runner
checkpoint into a file that every ``pretrained=`` argument accepts.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from clipdense.registry import MODELS


def resolve_autocast_dtype(name: Optional[str]) -> Optional[torch.dtype]:
    """``None``/``'float32'`` -> None, a dtype name -> that dtype, ``'auto'``
    -> bfloat16 when this machine runs it natively, else None."""
    if name in (None, 'float32'):
        return None
    if name == 'auto':
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        native = getattr(torch.cpu, '_is_avx512_bf16_supported', lambda: False)
        return torch.bfloat16 if native() else None
    if name not in ('bfloat16', 'float16'):
        raise ValueError(f'autocast_dtype must be None, "auto", "bfloat16" '
                         f'or "float16", got {name!r}')
    return getattr(torch, name)


@MODELS.register_module()
class ContrastiveCLIP(BaseModel):
    """An open_clip model trained with the CLIP contrastive loss.

    Args:
        model_name (str): open_clip architecture name (``open_clip.list_models()``
            or one registered with ``open_clip.add_model_config``).
        pretrained (str, optional): an open_clip checkpoint file to start from.
        freeze_text (bool): keep the text tower fixed (fine-tuning the image
            tower only, as OVSeg does).
        caption_key (str): key of the caption in each data sample.
        image_size (int, optional): train at another input size than the
            architecture's (open_clip ``force_image_size``).
        autocast_dtype (str, optional): ``'bfloat16'`` (or ``'float16'`` on
            CUDA) runs both towers under ``torch.autocast`` on the input's
            device; the loss is computed in fp32. MMEngine's
            ``AmpOptimWrapper`` is CUDA-only, this works on the CPU too (about
            1.5x faster there on CPUs with AVX512-BF16). ``'auto'``: bf16
            where the hardware has it (CUDA with bf16, or a CPU with
            AVX512-BF16), fp32 elsewhere.
        channels_last (bool): keep the image tower and its input in
            channels-last memory format (faster convolutions on the CPU).
        object_loss_weight (float): weight of the object-token loss, 0 (the
            default) for CLIP's loss alone. With a weight, the data samples
            must carry ``objects`` and either ``boxes`` (``PackCaptionInputs(
            with_boxes=True)``) or ``masks`` (``with_masks=True``, one per
            class of a label map): the image tower's dense tokens inside
            each object's box (or weighted by the share of each token's
            patch that its mask covers) are averaged into an embedding,
            which must pick its own noun's caption (``object_template``)
            among the nouns of the batch (cross-entropy over the batch's distinct
            nouns, at CLIP's learned temperature). Needs an open_clip
            VisionTransformer. A training choice for the synthetic world's
            proxy CLIP (issue #25), not part of CLIP.
        object_features (str): the dense tokens the object loss reads:
            ``'value'``, the last block's value path (MaskCLIP, Zhou et al.
            ECCV 2022: each token attending to itself) through the final
            norm and projection, the dense read-out that MaskCLIP, AnoVL and
            ReCo use; or ``'tokens'``, the last block's output tokens through
            the final norm and projection (the naive dense read-out).
        object_template (str): caption of one object; ``{}`` is replaced by
            its noun with its article.
        data_preprocessor (dict, optional): normalisation config, usually
            ``ImgDataPreprocessor`` with CLIP's mean/std and ``bgr_to_rgb``.
    """

    def __init__(self,
                 model_name: str,
                 *,
                 pretrained: Optional[str] = None,
                 freeze_text: bool = False,
                 caption_key: str = 'caption',
                 image_size: Optional[int] = None,
                 autocast_dtype: Optional[str] = None,
                 channels_last: bool = False,
                 object_loss_weight: float = 0.0,
                 object_features: str = 'value',
                 object_template: str = 'a photo of {}.',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        import open_clip
        from open_clip.loss import ClipLoss

        from clipdense.models.utils.clip_archs import register_clip_archs
        register_clip_archs()
        self.model_name = model_name
        self.clip = open_clip.create_model(
            model_name, pretrained=None, force_image_size=image_size)
        if pretrained is not None:
            from clipdense.fileio import safe_torch_load
            state = safe_torch_load(pretrained, map_location='cpu')
            state = state.get('state_dict', state)
            self.clip.load_state_dict(state)
        self._loaded_pretrained = pretrained is not None
        self.autocast_dtype = resolve_autocast_dtype(autocast_dtype)
        self.channels_last = channels_last
        if channels_last:
            self.clip.visual.to(memory_format=torch.channels_last)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.caption_key = caption_key
        self.loss_fn = ClipLoss()
        if float(object_loss_weight) < 0:
            raise ValueError('ContrastiveCLIP: object_loss_weight must be '
                             f'>= 0, got {object_loss_weight}')
        if object_features not in ('value', 'tokens'):
            raise ValueError('ContrastiveCLIP: object_features must be '
                             f'"value" or "tokens", got {object_features!r}')
        if '{}' not in object_template:
            raise ValueError('ContrastiveCLIP: object_template must hold '
                             f'"{{}}" for the noun, got {object_template!r}')
        self.object_loss_weight = float(object_loss_weight)
        self.object_features = object_features
        self.object_template = object_template
        if self.object_loss_weight > 0:
            self._check_object_tower()
        if freeze_text:
            for name, p in self.clip.named_parameters():
                if not name.startswith('visual.') and name != 'logit_scale':
                    p.requires_grad_(False)

    def init_weights(self):
        # open_clip initialises its towers in create_model; MMEngine's generic
        # init must not overwrite them (or loaded weights).
        pass

    def _captions(self, data_samples) -> List[str]:
        if isinstance(data_samples, dict):  # pseudo_collate of dicts
            return list(data_samples[self.caption_key])
        out = []
        for ds in data_samples:
            cap = ds[self.caption_key] if isinstance(ds, dict) else getattr(
                ds, self.caption_key)
            out.append(cap)
        return out

    def _check_object_tower(self) -> None:
        v = self.clip.visual
        if not (hasattr(v, '_embeds') and hasattr(v, 'transformer')
                and hasattr(v, '_pool')):
            raise ValueError(
                f'ContrastiveCLIP: the object-token loss needs an open_clip '
                f'VisionTransformer image tower; {self.model_name!r} has '
                f'{type(v).__name__}. Set object_loss_weight=0 or pick a ViT '
                'architecture')
        if getattr(v.patch_dropout, 'prob', 0.0) > 0:
            raise ValueError(
                'ContrastiveCLIP: the object-token loss needs every patch '
                'token; the architecture has patch_dropout > 0')

    def _field(self, data_samples, key: str) -> list:
        if isinstance(data_samples, dict):
            if key not in data_samples:
                raise KeyError(self._missing(key))
            return list(data_samples[key])
        out = []
        for ds in data_samples:
            has = key in ds if isinstance(ds, dict) else hasattr(ds, key)
            if not has:
                raise KeyError(self._missing(key))
            out.append(ds[key] if isinstance(ds, dict) else getattr(ds, key))
        return out

    @staticmethod
    def _missing(key: str) -> str:
        return (f'ContrastiveCLIP: the object-token loss needs "{key}" in '
                'every data sample; pack them with '
                'PackCaptionInputs(with_boxes=True) and keep "objects" and '
                '"boxes" in the dataset\'s keep_fields (or with_masks=True '
                'after LoadCaptionSegMap, keeping "seg_map")')

    def _image_and_tokens(self, inputs: torch.Tensor):
        """The pooled image embedding ``(B, D)`` and the dense tokens
        ``(B, gh, gw, D)`` named by ``object_features``, in one pass."""
        from clipdense.models.utils.dense_attention import BlockOps
        v = self.clip.visual
        gh, gw = (inputs.shape[-2] // v.patch_size[0],
                  inputs.shape[-1] // v.patch_size[1])
        x = v._embeds(inputs)
        blocks = v.transformer.resblocks
        if not getattr(v.transformer, 'batch_first', True):
            raise ValueError('ContrastiveCLIP: the object-token loss needs a '
                             'batch-first open_clip transformer')
        for blk in blocks[:-1]:
            x = blk(x)
        last_in = x
        x = blocks[-1](x)
        pooled, _ = v._pool(x)
        if v.proj is not None:
            pooled = pooled @ v.proj
        dense = (BlockOps(blocks[-1]).value_path(last_in)
                 if self.object_features == 'value' else x)
        dense = v.ln_post(dense[:, dense.shape[1] - gh * gw:])
        if v.proj is not None:
            dense = dense @ v.proj
        return pooled, dense.reshape(dense.shape[0], gh, gw, -1)

    @staticmethod
    def box_weights(boxes: torch.Tensor, grid, patch) -> torch.Tensor:
        """``(N, gh*gw)`` averaging weights of the tokens whose patch centre
        lies inside each box ``[x0, y0, x1, y1]`` (pixels); a box that holds
        no centre takes the token under its own centre."""
        gh, gw = grid
        ph, pw = patch
        cy = (torch.arange(gh, dtype=boxes.dtype, device=boxes.device)
              + 0.5) * ph
        cx = (torch.arange(gw, dtype=boxes.dtype, device=boxes.device)
              + 0.5) * pw
        inside_y = (cy[None] >= boxes[:, 1:2]) & (cy[None] < boxes[:, 3:4])
        inside_x = (cx[None] >= boxes[:, 0:1]) & (cx[None] < boxes[:, 2:3])
        w = (inside_y[:, :, None] & inside_x[:, None, :]).to(boxes.dtype)
        w = w.reshape(len(boxes), gh * gw)
        empty = w.sum(1) == 0
        if empty.any():
            b = boxes[empty]
            iy = ((b[:, 1] + b[:, 3]) / 2 / ph).long().clamp(0, gh - 1)
            ix = ((b[:, 0] + b[:, 2]) / 2 / pw).long().clamp(0, gw - 1)
            w[empty.nonzero()[:, 0], iy * gw + ix] = 1.0
        return w / w.sum(1, keepdim=True)

    @staticmethod
    def mask_weights(masks: torch.Tensor, grid) -> torch.Tensor:
        """``(N, gh*gw)`` averaging weights from ``(N, H, W)`` masks: each
        token weighted by the share of its patch that the mask covers
        (rows of empty masks are zero)."""
        m = torch.as_tensor(masks, device=getattr(masks, 'device',
                                                  'cpu')).float()
        if m.shape[0] == 0:
            return m.new_zeros((0, grid[0] * grid[1]))
        share = F.adaptive_avg_pool2d(m[:, None], grid).flatten(1)
        total = share.sum(1, keepdim=True)
        return share / total.clamp_min(1e-12)

    @staticmethod
    def _has(data_samples, key: str) -> bool:
        if isinstance(data_samples, dict):
            return key in data_samples
        first = data_samples[0]
        return key in first if isinstance(first, dict) else hasattr(
            first, key)

    def object_loss(self, dense: torch.Tensor, data_samples,
                    scale: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each object's box-averaged token embedding over
        the captions of the batch's distinct nouns (see the class doc)."""
        from clipdense.datasets.transforms.caption import with_article
        objects = self._field(data_samples, 'objects')
        masks = self._has(data_samples, 'masks')
        regions = self._field(data_samples, 'masks' if masks else 'boxes')
        b, gh, gw, d = dense.shape
        patch = self.clip.visual.patch_size
        feats, nouns = [], []
        for i in range(b):
            names = [str(n) for n in objects[i]]
            if not names:
                continue
            if masks:
                w = self.mask_weights(
                    torch.as_tensor(regions[i], device=dense.device),
                    (gh, gw))
                keep = w.sum(1) > 0
                w, names = w[keep], [n for n, k in zip(names, keep) if k]
            else:
                box = torch.as_tensor(regions[i], dtype=torch.float32,
                                      device=dense.device).reshape(-1, 4)
                w = self.box_weights(box, (gh, gw), patch)
            w = w.to(dense.device, dense.dtype)
            feats.append(w @ dense[i].reshape(gh * gw, d))
            nouns += names
        if not nouns:
            return dense.sum() * 0.0
        vocab = sorted(set(nouns))
        tokens = self.tokenizer([
            self.object_template.format(with_article(n)) for n in vocab
        ]).to(dense.device)
        with torch.autocast(dense.device.type, dtype=self.autocast_dtype,
                            enabled=self.autocast_dtype is not None):
            txt = self.clip.encode_text(tokens)
        obj = F.normalize(torch.cat(feats).float(), dim=-1)
        txt = F.normalize(txt.float(), dim=-1)
        labels = torch.tensor([vocab.index(n) for n in nouns],
                              device=dense.device)
        return F.cross_entropy(scale * obj @ txt.t(), labels)

    def encode(self, inputs: torch.Tensor, captions: List[str],
               with_tokens: bool = False):
        """L2-normalised image and caption embeddings; with ``with_tokens``
        also the dense tokens of ``object_features`` ``(B, gh, gw, D)``."""
        tokens = self.tokenizer(captions).to(inputs.device)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        dense = None
        with torch.autocast(inputs.device.type, dtype=self.autocast_dtype,
                            enabled=self.autocast_dtype is not None):
            if with_tokens:
                img, dense = self._image_and_tokens(inputs)
            else:
                img = self.clip.encode_image(inputs)
            txt = self.clip.encode_text(tokens)
        img = F.normalize(img.float(), dim=-1)
        txt = F.normalize(txt.float(), dim=-1)
        if with_tokens:
            return img, txt, dense
        return img, txt

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Union[Dict[str, torch.Tensor], list]:
        """Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            data_samples (list): B dicts with a caption each.
        Returns:
            ``loss``: dict with ``loss_contrastive`` (and ``loss_object``,
            weighted, when ``object_loss_weight > 0``) and the current
            ``logit_scale``; ``predict``: B dicts with L2-normalised
            ``image_embed`` / ``text_embed`` (C,); ``tensor``: the
            (B, B) image-to-text logits.
        """
        objects = mode == 'loss' and self.object_loss_weight > 0
        captions = self._captions(data_samples)
        # subclasses (OVSeg's MaskPromptCLIP) override encode(inputs,
        # captions) without the dense tokens; ask for them only when used
        if objects:
            img, txt, dense = self.encode(inputs, captions, with_tokens=True)
        else:
            img, txt = self.encode(inputs, captions)
        scale = self.clip.logit_scale.exp()
        if mode == 'loss':
            loss = self.loss_fn(img, txt, scale)
            losses = dict(loss_contrastive=loss)
            if objects:
                losses['loss_object'] = self.object_loss_weight * \
                    self.object_loss(dense, data_samples, scale)
            losses['logit_scale'] = scale.detach()
            return losses
        if mode == 'predict':
            return [
                dict(image_embed=i, text_embed=t)
                for i, t in zip(img.detach(), txt.detach())
            ]
        return scale * img @ txt.t()


def export_open_clip_state_dict(checkpoint: Union[str, dict],
                                prefix: str = 'clip.') -> Dict[str,
                                                              torch.Tensor]:
    """The open_clip state dict inside a :class:`ContrastiveCLIP` runner
    checkpoint (``state_dict`` keys ``clip.*`` with the prefix removed)."""
    if isinstance(checkpoint, str):
        from clipdense.fileio import safe_torch_load
        checkpoint = safe_torch_load(checkpoint, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not out:
        raise KeyError(f'no "{prefix}*" keys in the checkpoint; is it a '
                       'ContrastiveCLIP checkpoint?')
    return out
