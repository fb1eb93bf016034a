"""ReCo: retrieve and co-segment (Shin, Xie and Albanie, "ReCo: Retrieve and
Co-segment for Zero-shot Transfer", NeurIPS 2022) as an mmseg segmentor."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models.segmentors.base import BaseSegmentor

from clipdense.registry import MODELS
from .cosegmentation import (context_weights, reference_embedding,
                             reference_scores, text_attention)
from .crf import DenseCRF


@MODELS.register_module()
class ReCo(BaseSegmentor):
    """ReCo's training-free segmentor.

    For each concept of the vocabulary (once, then cached):

    1. retrieve the ``k`` images of an unlabelled pool closest to the
       concept's CLIP text embedding (:class:`~clipdense.models.reco.image_index.ImageIndex`,
       stored on disk and reused);
    2. compute their dense features and co-segment them into one reference
       embedding (:func:`~.cosegmentation.reference_embedding`), with the
       pixels weighted by the dense-CLIP text attention (language guidance)
       and by ``1 - sigmoid(cos(f, r_ctx))`` for the context concepts
       (context elimination).

    For an image: ``P_c = sigmoid(cos(f, r_c))`` on the dense features,
    resized to the input, times the dense-CLIP text attention
    ``sigmoid(10 cos(f_clip, t_c))`` (MaskCLIP-style value features of the
    CLIP backbone), optionally refined by a dense CRF, argmax over concepts.

    Args:
        clip_backbone (dict): the dense CLIP (:class:`OpenCLIPResNet` /
            :class:`OpenCLIPViT` with ``joint_outputs`` containing
            ``clip_feature``; ReCo: RN50x16, MaskCLIP's value path).
        decode_head (dict): a :class:`ReCoHead` (vocabulary, text encoder,
            co-segmentation options).
        index (dict): arguments of :class:`ImageIndex` (``folder``, and
            optionally ``arch``/``pretrained`` of the retrieval CLIP,
            ``cache_file``, ``templates``, ``image_size``, ``batch_size``,
            ``faiss_min_pool``, ``on_unreadable``, ``progress``). Without
            ``arch`` the CLIP backbone's image tower and the head's text
            encoder are used for retrieval too. The index is built (or
            loaded) at the first forward, not at construction.
        dense_encoder (dict, optional): backbone of the co-segmentation
            features (ReCo: DeiT-S/16-SIN); default: the CLIP backbone.
        dense_feature (int | str): which output of the dense encoder is
            the feature map: an index into its output tuple, or a key of the
            joint-space dict it returns last.
        clip_feature (str): key of the CLIP backbone's joint dict used for
            text attention (``'value'``).
        archive_size (int): retrieved images are resized (shorter side) and
            centre-cropped to this size before feature extraction (ReCo:
            224).
        archive_batch_size (int): retrieved images per forward pass.
        archive_resize (str): how retrieved images are resized to
            ``archive_size``: ``'pil-bilinear'`` (the authors: torchvision's
            ``resize`` + ``center_crop`` on PIL images) or
            ``'cv2-bicubic'`` (CLIP's preprocessing with cv2).
        crf (dict, optional): dense-CRF parameters (:class:`DenseCRF`, the
            ``pydensecrf`` module of ``pydensecrf2``, in
            requirements/runtime.txt); the paper configs turn it on.
        reference_cache (str, optional): folder where reference embeddings
            are stored (safetensors, one file per concept) and reused by
            later runs, keyed by the weights (content hash), the index file,
            the options and the concept's contexts (see
            :meth:`reference_cache_key`). The authors keep one pickle per
            dataset. ``None``: in memory only.
        data_preprocessor (dict): normalisation of inputs *and* of the
            retrieved images.
    """

    def __init__(self, clip_backbone: dict, decode_head: dict, index: dict, *,
                 dense_encoder: Optional[dict] = None,
                 dense_feature: Union[int, str] = -1,
                 clip_feature: str = 'value',
                 archive_size: int = 224,
                 archive_batch_size: int = 16,
                 archive_resize: str = 'pil-bilinear',
                 crf: Optional[dict] = None,
                 reference_cache: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not isinstance(index, dict) or not index.get('folder'):
            raise ValueError("ReCo needs index=dict(folder=...): the folder of "
                             'unlabelled images to retrieve from')
        self.clip_backbone = MODELS.build(clip_backbone)
        self.dense_encoder = MODELS.build(dense_encoder) if dense_encoder else None
        self.decode_head = MODELS.build(decode_head)
        self.dense_feature = dense_feature
        self.clip_feature = clip_feature
        self.archive_size = int(archive_size)
        self.archive_batch_size = int(archive_batch_size)
        if archive_resize not in ('pil-bilinear', 'cv2-bicubic'):
            raise ValueError("archive_resize must be 'pil-bilinear' (the authors) or "
                             f"'cv2-bicubic', got {archive_resize!r}")
        self.archive_resize = archive_resize
        self.reference_cache = reference_cache
        self._weights_hashes: Dict[tuple, str] = {}
        self.crf = DenseCRF(**crf) if crf else None
        self.index_cfg = dict(index)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.align_corners = False
        self.num_classes = self.out_channels = self.decode_head.num_classes
        self._index = None
        self.last_retrievals: Dict[str, object] = {}
        self.reference_cache_hits = 0

    # ------------------------------------------------------------------ index
    @property
    def index(self):
        """The :class:`ImageIndex` (built or loaded on first use)."""
        if self._index is None:
            from clipdense.models.reco.image_index import ImageIndex
            cfg = dict(self.index_cfg)
            folder = cfg.pop('folder')
            arch = cfg.pop('arch', None)
            if arch is None:
                # retrieval with the dense CLIP's own towers
                arch = self.clip_backbone.arch
                cfg.setdefault('pretrained', self.clip_backbone.pretrained)
                cfg['visual'] = self.clip_backbone.visual
                cfg['text_encoder'] = self.decode_head.text_encoder
            cfg.setdefault('device', self._device())
            self._index = ImageIndex(folder, arch=arch, **cfg)
            self._index.build()
        return self._index

    def _device(self):
        return next(self.clip_backbone.parameters()).device

    # --------------------------------------------------------------- features
    @staticmethod
    def _select(outs, key):
        if isinstance(key, str):
            joint = outs[-1] if isinstance(outs, (list, tuple)) else outs
            if not isinstance(joint, dict) or key not in joint:
                raise KeyError(f"the encoder returns no joint output {key!r}; add it "
                               'to the backbone\'s joint_outputs')
            return joint[key]
        if isinstance(outs, torch.Tensor):
            return outs
        feat = outs[key]
        if not isinstance(feat, torch.Tensor):
            raise TypeError(f'output {key} of the encoder is a {type(feat).__name__}, '
                            'not a feature map; choose another dense_feature')
        return feat

    def _features(self, x: torch.Tensor, need_clip: bool):
        """Dense features ``(B, C, h, w)`` and (when needed) the CLIP
        joint-space features ``(B, D, h', w')``."""
        clip_out = None
        if self.dense_encoder is None or need_clip:
            clip_out = self.clip_backbone(x)
        if self.dense_encoder is None:
            dense = self._select(clip_out, self.dense_feature)
        else:
            dense = self._select(self.dense_encoder(x), self.dense_feature)
        clip = self._select(clip_out, self.clip_feature) if need_clip else None
        return dense, clip

    def extract_feat(self, inputs: torch.Tensor):
        return self._features(inputs, need_clip=False)[0]

    # ------------------------------------------------------------- references
    def _weights_key(self) -> tuple:
        mods = [self.clip_backbone] + ([self.dense_encoder] if self.dense_encoder else [])
        return tuple((p.data_ptr(), p._version) for m in mods for p in m.parameters()) + \
            self.decode_head.text_encoder.weights_key()

    def _resize_archive(self, rgb: np.ndarray) -> np.ndarray:
        from clipdense.models.reco.image_index import resize_center_crop
        if self.archive_resize == 'cv2-bicubic':
            return resize_center_crop(rgb, self.archive_size)
        from clipdense.datasets.transforms.center_crop_frame import (
            center_crop_offsets, pil_resize, torchvision_resized_size)
        s = self.archive_size
        nh, nw = torchvision_resized_size(*rgb.shape[:2], s)
        top, left = center_crop_offsets(nh, nw, s, s)
        return pil_resize(rgb, nh, nw, 'bilinear')[top:top + s, left:left + s]

    def _load_archive(self, paths: Sequence[str]) -> torch.Tensor:
        from clipdense.models.reco.image_index import read_rgb
        imgs = []
        for p in paths:
            bgr = self._resize_archive(read_rgb(p))[:, :, ::-1]
            imgs.append(torch.from_numpy(np.ascontiguousarray(bgr)).permute(2, 0, 1))
        data = self.data_preprocessor(dict(inputs=imgs, data_samples=None), False)
        return data['inputs']

    def weights_hash(self) -> str:
        """Content hash of every weight a reference depends on (CLIP
        backbone, dense encoder, text tower); computed once per set of
        weights."""
        key = self._weights_key()
        if key not in self._weights_hashes:
            import hashlib

            from clipdense.models.reco.image_index import weights_hash
            enc = self.decode_head.text_encoder
            mods = [self.clip_backbone] + ([self.dense_encoder] if self.dense_encoder else [])
            h = hashlib.blake2b(digest_size=16)
            for m in mods:
                h.update(weights_hash(m).encode())
            tower = getattr(enc, 'tower_parameters', None)
            params = list(tower()) if tower is not None else list(enc.parameters())
            for p in params:
                t = p.detach().cpu().contiguous().reshape(-1)
                h.update(f'{t.numel()}:{t.dtype}'.encode())
                h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b'')
            self._weights_hashes = {key: h.hexdigest()}
        return self._weights_hashes[key]

    def _index_fingerprint(self) -> Optional[dict]:
        """The index file (path, size, mtime) and its retrieval settings;
        ``None`` while no index file exists."""
        import os
        import os.path as osp
        path = self.index_cfg.get('cache_file') or getattr(self._index, 'cache_file', None)
        if not path or not osp.isfile(path):
            return None
        st = os.stat(path)
        cfg = {k: self.index_cfg.get(k) for k in ('folder', 'arch', 'pretrained', 'templates')}
        cfg['folder'] = osp.abspath(cfg['folder'])
        return dict(file=osp.abspath(path), size=int(st.st_size), mtime_ns=int(st.st_mtime_ns),
                    **{k: v if isinstance(v, (str, type(None))) else list(v)
                       for k, v in cfg.items()})

    def reference_cache_key(self, concept: str, contexts: Sequence[str]) -> Optional[dict]:
        """What a stored reference must match to be reused: format,
        concept, its context concepts (in order), the head's options,
        archive preprocessing, normalisation, feature choice, the weights'
        content hash and the index file. ``None`` when no index file exists
        yet (nothing stored can match)."""
        index = self._index_fingerprint()
        if index is None:
            return None
        dp = self.data_preprocessor

        def plain(v):
            if isinstance(v, torch.Tensor):
                return [round(float(x), 6) for x in v.flatten().tolist()]
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v
        return dict(format=1, concept=concept, contexts=list(contexts),
                    options=plain(self.decode_head.option_key()),
                    archive=[self.archive_size, self.archive_resize],
                    normalise=[plain(getattr(dp, 'mean', None)), plain(getattr(dp, 'std', None)),
                               bool(getattr(dp, '_channel_conversion', False))],
                    features=[plain(self.dense_feature), self.clip_feature],
                    weights=self.weights_hash(), index=index)

    def _cache_path(self, key: dict) -> str:
        import hashlib
        import json
        import os.path as osp
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        return osp.join(self.reference_cache, f'{digest}.safetensors')

    def _load_cached_reference(self, key: Optional[dict]) -> Optional[torch.Tensor]:
        import json
        import os.path as osp
        import warnings
        if self.reference_cache is None or key is None:
            return None
        path = self._cache_path(key)
        if not osp.isfile(path):
            return None
        try:
            from safetensors import safe_open
            with safe_open(path, framework='pt') as f:
                stored = json.loads((f.metadata() or {}).get('key', 'null'))
                ref = f.get_tensor('reference')
        except Exception as e:  # noqa: BLE001  (truncated or foreign file)
            warnings.warn(f'ignoring unreadable cached reference {path}: {e}')
            return None
        if stored != json.loads(json.dumps(key)):
            return None  # a hash collision: recompute (and overwrite)
        return ref.to(self._device())

    def _store_reference(self, key: Optional[dict], ref: torch.Tensor) -> None:
        import json
        import os
        import tempfile
        if self.reference_cache is None or key is None:
            return
        from safetensors.torch import save
        os.makedirs(self.reference_cache, exist_ok=True)
        path = self._cache_path(key)
        data = save({'reference': ref.detach().float().cpu().contiguous()},
                    metadata={'key': json.dumps(key, sort_keys=True)})
        fd, tmp = tempfile.mkstemp(dir=self.reference_cache, suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # readers see no file or a whole one
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @torch.no_grad()
    def _reference(self, concept: str, contexts: Dict[str, torch.Tensor]) -> torch.Tensor:
        head = self.decode_head
        key = (self._weights_key(), head.option_key(), self.index_cfg.get('cache_file'),
               self.archive_size, self.archive_resize, concept, tuple(contexts))
        if key in head._refs:
            return head._refs[key]
        disk_key = self.reference_cache_key(concept, list(contexts)) \
            if self.reference_cache else None
        ref = self._load_cached_reference(disk_key)
        if ref is not None:
            self.reference_cache_hits += 1
            head._refs[key] = ref
            return ref
        hit = self.index.retrieve([concept], head.k)[0]
        self.last_retrievals[concept] = hit
        dense, clip = [], []
        for i in range(0, len(hit.paths), self.archive_batch_size):
            x = self._load_archive(hit.paths[i:i + self.archive_batch_size])
            d, c = self._features(x, need_clip=head.language_guidance)
            dense.append(d.float())
            if c is not None:
                clip.append(c.float())
        dense = torch.cat(dense)
        weights = torch.ones(dense.shape[0], *dense.shape[2:], device=dense.device)
        if head.language_guidance:
            t = head.class_embeddings([concept])[0]
            weights = weights * text_attention(torch.cat(clip), t, head.temperature,
                                               size=dense.shape[-2:])
        if contexts:
            weights = weights * context_weights(dense, torch.stack(list(contexts.values())))
        ref, _, _ = reference_embedding(
            dense, weights, column_slicing=head.column_slicing,
            include_own_image=head.include_own_image, chunk=head.affinity_chunk)
        head._refs[key] = ref
        if self.reference_cache:
            self._store_reference(self.reference_cache_key(concept, list(contexts)), ref)
        return ref

    def references(self) -> torch.Tensor:
        """``(K, C)`` reference embeddings of the vocabulary (built for
        concepts not seen before, cached otherwise)."""
        head = self.decode_head
        names = head.vocabulary_names
        ctx = {}
        if head.context_elimination:
            for c in head.context_concepts:
                # the authors' code: each context with the earlier ones
                # eliminated; otherwise language guidance only (Sec. 3.3)
                ctx[c] = self._reference(
                    c, dict(ctx) if head.progressive_context_elimination else {})
        refs = []
        for name in names:
            target = head.concept_aliases.get(name, name)
            if target in ctx:
                refs.append(ctx[target])  # a context concept is its own reference
            else:
                refs.append(self._reference(target, ctx))
        return torch.stack(refs)

    # -------------------------------------------------------------- inference
    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict] = None):
        """Scores ``(B, K, H, W)`` (products of sigmoids, in (0, 1))."""
        head = self.decode_head
        self.num_classes = self.out_channels = head.num_classes
        refs = self.references()
        dense, clip = self._features(inputs, need_clip=head.dense_clip_inference)
        size = inputs.shape[-2:]
        scores = reference_scores(dense, refs)
        scores = F.interpolate(scores, size=size, mode='bilinear', align_corners=False)
        if head.dense_clip_inference:
            scores = scores * text_attention(clip, head.class_embeddings(),
                                             head.temperature, size=size)
        if self.crf is not None:
            scores = self.crf.refine_batch(self._unnormalise(inputs), scores)
        return scores

    def _unnormalise(self, inputs: torch.Tensor) -> torch.Tensor:
        dp = self.data_preprocessor
        x = inputs
        if getattr(dp, '_enable_normalize', False):
            x = x * dp.std + dp.mean
        if not getattr(dp, '_channel_conversion', False):
            x = x[:, [2, 1, 0]]  # inputs stayed BGR; the CRF takes RGB
        return x.clamp(0, 255).round().to(torch.uint8)

    def predict(self, inputs: torch.Tensor, data_samples=None):
        if data_samples is not None:
            metas = [s.metainfo for s in data_samples]
        else:
            metas = [dict(ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                          pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0])] * \
                inputs.shape[0]
        results = self.postprocess_result(self.encode_decode(inputs, metas), data_samples)
        lut = self.decode_head.fine_to_coarse
        if lut is not None:
            # the authors' COCO-Stuff-27: argmax over the fine classes, then
            # each fine class's coarse class
            lut = torch.tensor(lut, dtype=torch.long, device=inputs.device)
            for r in results:
                pred = r.pred_sem_seg.data
                r.pred_sem_seg.data = lut.to(pred.device)[pred.long()].to(pred.dtype)
        return results

    def _forward(self, inputs: torch.Tensor, data_samples=None):
        return self.encode_decode(inputs)

    def loss(self, inputs, data_samples):
        raise RuntimeError(
            'ReCo is training-free (retrieval + co-segmentation of frozen features): '
            'use it for inference/testing, or train ReCo+ on its pseudo-labels '
            '(configs/reco/reco-plus_*.py)')
