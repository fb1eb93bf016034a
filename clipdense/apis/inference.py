"""Inference with any vocabulary: ``init_model`` and ``inference_model`` for
clipdense's open-vocabulary segmentors.

Example::

    from clipdense.apis import init_model, inference_model
    model = init_model('configs/maskclip/maskclip_vit-b16-openai_voc12-20cls-512x512.py')
    result = inference_model(model, 'demo/demo.png', vocabulary=['cup', 'grass'])
    result.pred_sem_seg.data  # (1, H, W) indices into the vocabulary

Changing the vocabulary re-encodes only the text (cached per vocabulary);
the image backbone is never rebuilt.

The open-vocabulary protocol
----------------------------
Any model works with :func:`inference_model` (and ``demo/image_demo.py``)
when it has an *open-vocabulary module*: the segmentor itself, its
``decode_head`` or any sub-module (looked for in that order) that
implements

* ``vocabulary`` - attribute, the current class names (a sequence of str;
  one entry may hold comma-separated synonyms, ``'sofa, couch'``);
* ``set_vocabulary(names)`` - use ``names`` from now on: encode the text
  (cached per vocabulary), never rebuild or reload the image tower, raise
  ``ValueError`` with a clear message for a bad vocabulary, and, when the
  module is the decode head, set its ``num_classes`` and ``out_channels`` to
  ``len(names)`` (:func:`inference_model` copies them to the segmentor, whose
  slide inference reads them);
* optionally ``text_encoder`` - a text encoder with ``tokenizer`` and
  ``context_length`` (clipdense's ``OpenCLIPTextEncoder``): class names
  longer than its context are then refused before anything runs.

The model's predictions (``pred_sem_seg``) must index the vocabulary, and
``seg_logits`` must have one channel per class. The protocol is written
once: :class:`~clipdense.models.open_vocab.OpenVocabMixin` (the vocabulary,
checked once per change, the text encoder and its cache, the class count)
and, for training-free heads,
:class:`~clipdense.models.decode_heads.training_free_head.TrainingFreeHead`
(MaskCLIP, ClearCLIP, SCLIP, ReCo); OVSeg's head uses the mixin, DenseCLIP
plugs in the same way (a model with a fixed class list simply has no such
module and refuses a ``vocabulary=`` argument with a ``TypeError``).
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from clipdense.fileio.image import (ImageType, check_image_pixels,  # noqa: F401
                                    decode_image_file, image_file_size, load_image)

#: Images larger than this (pixels, after the test pipeline) are segmented
#: with a sliding window when the config says ``mode='whole'``, so that
#: memory is bounded by the window, not the image (a ViT's attention grows
#: with the square of the token count).
WHOLE_MAX_PIXELS = 1024 * 1024
#: Windows per forward pass of that sliding window (the windows' scores are
#: added into their own boxes: cost linear in the pixels, see
#: :mod:`clipdense.models.segmentors.batched_slide`).
WHOLE_SLIDE_BATCH_SIZE = 8
#: Larger images are refused: the class scores of every pixel are kept
#: (``seg_logits``), ``4 * K * H * W`` bytes.
MAX_PIXELS = 64 * 1024 * 1024
#: Vocabularies of at least this many classes are segmented without the
#: full-size class scores (``test_cfg.labels_only``: the same labels, no
#: ``seg_logits``) unless the caller asks for the scores
#: (``inference_model(..., labels_only=False)``, the demo's heat maps).
LABELS_ONLY_MIN_CLASSES = 100
#: The class a one-class vocabulary is segmented against (see
#: :func:`set_model_vocabulary`): a softmax over one class is 1 everywhere,
#: and mmseg's one-channel path needs a trained threshold.
ONE_CLASS_BACKGROUND = 'background'


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None, *,
               allow_partial_load: Optional[bool] = None):
    """Build a segmentor from a config (and optionally load a checkpoint).

    Args:
        config (str | Config): config file or object.
        checkpoint (str, optional): checkpoint to load (``state_dict`` of
            the whole segmentor).
        device (str | torch.device): any torch device (``'cpu'``,
            ``'cuda:0'``, ...); nothing is hard-coded.
        cfg_options (dict, optional): overrides merged into the config;
            a key that does not exist but is close to one that does is
            refused (:mod:`clipdense.utils.cfg_options`).
        allow_partial_load (bool, optional): load a checkpoint that does
            not fit the model (other keys or shapes; what it lacks keeps the
            initial weights). Default: the config's ``allow_partial_load``,
            else False: such a checkpoint is refused with a
            :class:`~clipdense.engine.strict_load.CheckpointMismatchError`
            naming the keys.

    Raises:
        FileNotFoundError: no config or checkpoint file.
        CfgOptionsError: a misspelt ``cfg_options`` key.
        CheckpointReadError: a truncated checkpoint.
        CheckpointMismatchError: a checkpoint that does not fit.
        UnsafeCheckpointError: a checkpoint that needs full unpickling.

    Returns:
        nn.Module: the model in eval mode, with ``model.cfg`` and
        ``model.dataset_meta`` (``classes`` = the vocabulary when the model
        has an open-vocabulary module, see the module docstring).
    """
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        config = Config.fromfile(config)
    elif not isinstance(config, Config):
        raise TypeError(f'config must be a path or a Config, got {type(config).__name__}')
    else:
        config = copy.deepcopy(config)
    if cfg_options:
        from clipdense.utils.cfg_options import check_cfg_options
        check_cfg_options(config, cfg_options)
        config.merge_from_dict(cfg_options)
    if allow_partial_load is None:
        allow_partial_load = bool(config.get('allow_partial_load', False))
    # registers clipdense's, mmseg's and mmdet's modules and installs the
    # weights-only checkpoint loader that understands MMEngine's checkpoints
    from clipdense.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope(config.get('default_scope', 'clipdense'))
    from clipdense.models.segmentors.batched_slide import \
        apply_inference_options
    from clipdense.registry import MODELS
    config.model.train_cfg = None
    apply_inference_options(config.model, batched_slide=True)
    model = MODELS.build(config.model)
    dataset_meta = None
    if checkpoint is not None:
        from mmengine.runner.checkpoint import _load_checkpoint_to_model

        from clipdense.engine.strict_load import (check_checkpoint_fits,
                                                  read_checkpoint)
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        ckpt = read_checkpoint(checkpoint)
        if not allow_partial_load:
            check_checkpoint_fits(model, checkpoint, ckpt)
        _load_checkpoint_to_model(model, ckpt, strict=False)
        meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
        dataset_meta = (meta or {}).get('dataset_meta')
    head = vocabulary_module(model, required=False)
    if dataset_meta is None and head is None:
        # a fixed-class model: the names of the config's dataset
        dataset_meta = config_dataset_meta(config)
    if head is not None and len(head.vocabulary) == 1:
        # a one-class config vocabulary: against a background class
        model.dataset_meta = {}
        set_model_vocabulary(model, list(head.vocabulary))
    if dataset_meta is None:
        dataset_meta = {}
    if head is not None:
        dataset_meta = dict(dataset_meta, classes=tuple(head.vocabulary))
    if 'palette' not in dataset_meta or \
            len(dataset_meta['palette']) < len(dataset_meta.get('classes', ())):
        dataset_meta['palette'] = make_palette(len(dataset_meta.get('classes', ())))
    model.dataset_meta = dataset_meta
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def config_dataset_meta(config) -> Optional[dict]:
    """``classes`` (and ``palette``) of the config's test dataset: its
    ``metainfo`` or its class's ``METAINFO``, without building it; None
    when the config names none."""
    loader = config.get('test_dataloader') or config.get('val_dataloader') or {}
    dataset = loader.get('dataset') or {}
    while isinstance(dataset, dict) and 'dataset' in dataset and \
            'metainfo' not in dataset:  # wrappers (e.g. RepeatDataset)
        dataset = dataset['dataset']
    if not isinstance(dataset, dict):
        return None
    meta = dict(dataset.get('metainfo') or {})
    if 'classes' not in meta and dataset.get('type') is not None:
        try:
            from clipdense.registry import DATASETS
            cls = DATASETS.get(dataset['type'])
        except Exception:  # noqa: BLE001  (an unknown type: no names)
            cls = None
        info = getattr(cls, 'METAINFO', None) or {}
        meta = dict(info, **meta)
    if not meta.get('classes'):
        return None
    meta['classes'] = tuple(meta['classes'])
    return {k: meta[k] for k in ('classes', 'palette') if k in meta}


def make_palette(n: int) -> List[List[int]]:
    """``n`` distinct, deterministic RGB colours."""
    rng = np.random.RandomState(42)
    base = [[128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156],
            [190, 153, 153], [153, 153, 153], [250, 170, 30], [220, 220, 0],
            [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
            [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100],
            [0, 0, 230], [119, 11, 32]]
    extra = rng.randint(0, 256, size=(max(0, n - len(base)), 3)).tolist()
    return (base + extra)[:n]


def vocabulary_module(model, required=True):
    """The open-vocabulary module of ``model`` (see the module docstring and
    :func:`clipdense.models.open_vocab.find_vocabulary_module`)."""
    from clipdense.models.open_vocab import find_vocabulary_module
    return find_vocabulary_module(model, required)


def set_model_vocabulary(model, vocabulary: Sequence[str]) -> None:
    """Give ``model`` a new vocabulary (the protocol of the module
    docstring): checks the names, calls ``set_vocabulary`` of its
    open-vocabulary module, copies ``num_classes`` / ``out_channels`` to the
    segmentor and updates ``model.dataset_meta`` (classes, palette).

    A one-class vocabulary (``['cat']``) is segmented against an added
    :data:`ONE_CLASS_BACKGROUND` class: the classes become
    ``('cat', 'background')``, index 1 marking the pixels that are not
    'cat'. (Open-vocabulary heads score classes against each other; one
    class alone would win every pixel, and mmseg's one-channel path needs a
    threshold no open-vocabulary head has.)

    Raises:
        TypeError: ``vocabulary`` is one string, or the model has no
            open-vocabulary module.
        ValueError: empty vocabulary, empty or repeated names, a name longer
            than the text encoder's context, or the one class
            :data:`ONE_CLASS_BACKGROUND` alone.
    """
    if isinstance(vocabulary, str):
        raise TypeError('vocabulary must be a list of class names, not one string '
                        f'({vocabulary!r}); split it first')
    from clipdense.models.open_vocab import apply_vocabulary
    head = apply_vocabulary(model, one_class_vocabulary(list(vocabulary)))
    meta = dict(getattr(model, 'dataset_meta', None) or {})
    meta['classes'] = tuple(head.vocabulary)
    if len(meta.get('palette', ())) < len(meta['classes']):
        meta['palette'] = make_palette(len(meta['classes']))
    model.dataset_meta = meta


def one_class_vocabulary(names: List[str]) -> List[str]:
    """``names`` with :data:`ONE_CLASS_BACKGROUND` appended when it holds
    a single class (see :func:`set_model_vocabulary`)."""
    if len(names) != 1:
        return names
    syns = [s.strip().lower() for s in str(names[0]).split(',')]
    if ONE_CLASS_BACKGROUND in syns:
        raise ValueError(
            f'the vocabulary {names} has only the class '
            f'{ONE_CLASS_BACKGROUND!r}, which a one-class vocabulary is '
            'segmented against; name the thing(s) to find, e.g. '
            "['cat'] (segmented as cat vs background) or ['cat', 'background']")
    return names + [ONE_CLASS_BACKGROUND]


def _test_pipeline(cfg) -> Compose:
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        pipeline = cfg.test_dataloader.dataset.pipeline
    steps = [copy.deepcopy(t) for t in pipeline
             if t.get('type') not in ('LoadImageFromFile', 'LoadImageFromNDArray',
                                      'LoadAnnotations', 'LoadDepthAnnotation')]
    return Compose(steps)


def _slide_cfg(model, h: int, w: int) -> dict:
    """A sliding-window test_cfg for a large image: windows of the config's
    ``crop_size`` (else 512), two thirds overlap stride,
    :data:`WHOLE_SLIDE_BATCH_SIZE` windows per pass (unless the config sets
    ``slide_batch_size``)."""
    crop = model.cfg.get('crop_size', None) or (512, 512)
    if isinstance(crop, int):
        crop = (crop, crop)
    ch, cw = (int(min(crop[0], h)), int(min(crop[1], w)))
    stride = (max(1, ch * 2 // 3), max(1, cw * 2 // 3))
    batch = (getattr(model, 'test_cfg', None) or {}).get('slide_batch_size')
    return dict(mode='slide', crop_size=(ch, cw), stride=stride,
                slide_batch_size=batch or WHOLE_SLIDE_BATCH_SIZE)


def labels_only_supported(model) -> bool:
    """Whether ``model`` can predict labels without full-size scores
    (``test_cfg.labels_only``, :mod:`clipdense.models.segmentors.labels_only`
    decides: a whole-image test and a decode head using mmseg's
    ``predict``)."""
    from clipdense.models.segmentors.labels_only import LabelsOnlyMixin
    test_cfg = getattr(model, 'test_cfg', None)
    if not isinstance(model, LabelsOnlyMixin) or test_cfg is None:
        return False
    model.test_cfg = type(test_cfg)(dict(test_cfg, labels_only=True))
    try:
        return bool(model._labels_only())
    except (ValueError, NotImplementedError):
        return False
    finally:
        model.test_cfg = test_cfg


def choose_labels_only(model, labels_only: Optional[bool] = None,
                       sliding: bool = False) -> Optional[bool]:
    """The ``test_cfg.labels_only`` of one call: ``labels_only`` when given
    (``True`` / ``False``), else ``True`` for a vocabulary of at least
    :data:`LABELS_ONLY_MIN_CLASSES` classes on a model that supports it and
    a whole-image test, ``False`` for a sliding-window call; ``None`` keeps
    the config's setting."""
    if labels_only:
        if sliding or not labels_only_supported(model):
            raise ValueError(
                'labels_only=True needs a whole-image test of an mmseg-style '
                f'segmentor whose decode head uses mmseg\'s predict; '
                f'{type(model).__name__} / this image '
                f'({"sliding window" if sliding else "unsupported model"}) '
                'cannot: pass labels_only=None or False')
        return True
    if labels_only is not None:
        return False
    if sliding:  # sliding windows average full-size scores
        return False
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes', ())
    if len(classes) < LABELS_ONLY_MIN_CLASSES:
        return None
    return True if labels_only_supported(model) else None


def _describe(img) -> str:
    return img if isinstance(img, str) else 'the image'


def inference_model(model, images: Union[ImageType, Sequence[ImageType]],
                    vocabulary: Optional[Sequence[str]] = None, *,
                    whole_max_pixels: Optional[int] = WHOLE_MAX_PIXELS,
                    max_pixels: Optional[int] = MAX_PIXELS,
                    labels_only: Optional[bool] = None):
    """Segment images, optionally with a new vocabulary.

    Args:
        model (nn.Module): from :func:`init_model`.
        images (str | ndarray | list): image path(s) or BGR array(s); any
            of grayscale, RGBA, 16-bit (see :func:`load_image`).
        vocabulary (Sequence[str], optional): class names to use from now
            on (see the module docstring: text only, cached; the image
            backbone is untouched); an entry may list comma-separated
            synonyms (``'sofa, couch'``). ``model.dataset_meta['classes']``
            follows.
        whole_max_pixels (int, optional): a model configured for
            whole-image inference runs an image larger than this (after the
            test pipeline) with a sliding window (the config's
            ``crop_size``, else 512, stride 2/3 of it), so memory stays
            bounded by the window. ``None``: never.
        max_pixels (int, optional): refuse larger images (after the test
            pipeline) with a ``ValueError`` (the per-pixel class scores
            alone take ``4*K*H*W`` bytes). ``None``: no limit.
        labels_only (bool, optional): ``False``: always return the class
            scores (``seg_logits``, e.g. for heat maps); ``True``: labels
            only (``test_cfg.labels_only``); ``None`` (default): labels only
            for vocabularies of at least :data:`LABELS_ONLY_MIN_CLASSES`
            classes when the model supports it (:func:`choose_labels_only`),
            the config's setting otherwise.

    Returns:
        SegDataSample | list[SegDataSample]: one for a single image, a list
        for a list; ``pred_sem_seg`` indexes the vocabulary, ``seg_logits``
        has one channel per class.

    Raises:
        TypeError: a vocabulary given as one string, or for a model with
            no open-vocabulary module.
        ValueError: a bad vocabulary (empty, repeated or empty names, a name
            longer than the text context), a file that is not an image, an
            image above ``max_pixels``.
        FileNotFoundError: a missing image file.
    """
    if vocabulary is not None:
        set_model_vocabulary(model, vocabulary)
    single = not isinstance(images, (list, tuple))
    imgs = [images] if single else list(images)
    if not imgs:
        raise ValueError('no images given')
    cfg = model.cfg
    init_default_scope(cfg.get('default_scope', 'clipdense'))
    pipeline = _test_pipeline(cfg)
    results = []
    for img in imgs:
        arr = load_image(img, max_pixels=max_pixels)
        data = dict(img=arr, img_path=img if isinstance(img, str) else None,
                    img_shape=arr.shape[:2], ori_shape=arr.shape[:2])
        data = pipeline(data)
        h, w = data['inputs'].shape[-2:]
        for size in (h * w, arr.shape[0] * arr.shape[1]):
            if max_pixels is not None and size > max_pixels:
                k = len(getattr(model, 'dataset_meta', {}).get('classes', ())) or 1
                raise ValueError(
                    f'{_describe(img)} is {arr.shape[1]}x{arr.shape[0]} '
                    f'({size / 1e6:.0f} megapixels), above the limit of '
                    f'{max_pixels / 1e6:.0f} megapixels (max_pixels): its '
                    f'{k} class score maps alone would take '
                    f'{4 * k * size / 2**30:.1f} GiB. Downscale the image, or '
                    'raise max_pixels if you have the memory')
        batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
        test_cfg = getattr(model, 'test_cfg', None)
        slide = (whole_max_pixels is not None and test_cfg is not None
                 and test_cfg.get('mode', 'whole') == 'whole'
                 and h * w > whole_max_pixels)
        call_cfg = dict(test_cfg, **_slide_cfg(model, h, w)) if slide else None
        lo = choose_labels_only(model, labels_only, sliding=slide)
        if lo is not None and test_cfg is not None and \
                bool(test_cfg.get('labels_only', False)) != lo:
            call_cfg = dict(call_cfg or test_cfg, labels_only=lo)
        if call_cfg is not None:
            model.test_cfg = type(test_cfg)(call_cfg)
        try:
            with torch.no_grad():
                results.extend(model.test_step(batch))
        finally:
            if call_cfg is not None:
                model.test_cfg = test_cfg
    return results[0] if single else results
