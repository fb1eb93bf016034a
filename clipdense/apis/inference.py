"""Single-image inference with any vocabulary: ``init_model`` and
``inference_model`` for clipdense's open-vocabulary segmentors.

Example::

    from clipdense.apis import init_model, inference_model
    model = init_model('configs/maskclip/maskclip_vit-b16-openai_voc12-512x512.py')
    result = inference_model(model, 'demo/demo.png', vocabulary=['cup', 'grass'])
    result.pred_sem_seg.data  # (1, H, W) indices into the vocabulary

Changing the vocabulary re-encodes only the text (cached per vocabulary);
the image backbone is never rebuilt.
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

ImageType = Union[str, np.ndarray]


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None):
    """Build a segmentor from a config (and optionally load a checkpoint).

    Args:
        config (str | Config): config file or object.
        checkpoint (str, optional): checkpoint to load (``state_dict`` of
            the whole segmentor).
        device (str | torch.device): any torch device (``'cpu'``,
            ``'cuda:0'``, ...); nothing is hard-coded.
        cfg_options (dict, optional): overrides merged into the config.

    Returns:
        nn.Module: the model in eval mode, with ``model.cfg`` and
        ``model.dataset_meta`` (``classes`` = the head's vocabulary when it
        has one).
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
        config.merge_from_dict(cfg_options)
    init_default_scope(config.get('default_scope', 'clipdense'))
    import clipdense.models  # noqa: F401  (registers the modules)
    from clipdense.registry import MODELS
    config.model.train_cfg = None
    model = MODELS.build(config.model)
    dataset_meta = None
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        dataset_meta = ckpt.get('meta', {}).get('dataset_meta')
    head = _vocabulary_module(model, required=False)
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


def _vocabulary_module(model, required=True):
    """The module of ``model`` whose vocabulary can be changed."""
    head = getattr(model, 'decode_head', None)
    if head is not None and callable(getattr(head, 'set_vocabulary', None)):
        return head
    for m in model.modules():
        if m is not model and callable(getattr(m, 'set_vocabulary', None)):
            return m
    if required:
        raise TypeError(f'{type(model).__name__} has no open-vocabulary module '
                        '(nothing with set_vocabulary()); a fixed-class model '
                        'cannot take a vocabulary')
    return None


def load_image(img: ImageType) -> np.ndarray:
    """An image as a BGR ``uint8`` ``(H, W, 3)`` array (as mmcv loads it).

    Accepts a path or an array: grayscale is repeated to 3 channels, an
    alpha channel is dropped, 16-bit images are scaled to 8 bits.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file is not a readable image / bad array shape.
    """
    import mmcv
    if isinstance(img, str):
        if not osp.isfile(img):
            raise FileNotFoundError(f'image not found: {img}')
        arr = mmcv.imread(img, flag='unchanged', backend='cv2')
        if arr is None:
            raise ValueError(f'{img} is not an image (or an unsupported image format)')
    elif isinstance(img, np.ndarray):
        arr = img
    else:
        raise TypeError(f'images must be paths or arrays, got {type(img).__name__}')
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise ValueError(f'expected an (H, W, 3) image, got shape {arr.shape}')
    return np.ascontiguousarray(arr)


def _test_pipeline(cfg) -> Compose:
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        pipeline = cfg.test_dataloader.dataset.pipeline
    steps = [copy.deepcopy(t) for t in pipeline
             if t.get('type') not in ('LoadImageFromFile', 'LoadImageFromNDArray',
                                      'LoadAnnotations', 'LoadDepthAnnotation')]
    return Compose(steps)


def inference_model(model, images: Union[ImageType, Sequence[ImageType]],
                    vocabulary: Optional[Sequence[str]] = None):
    """Segment images, optionally with a new vocabulary.

    Args:
        model (nn.Module): from :func:`init_model`.
        images (str | ndarray | list): image path(s) or BGR array(s).
        vocabulary (Sequence[str], optional): class names to use from now
            on (the head's ``set_vocabulary``: text only, cached; the image
            backbone is untouched). ``model.dataset_meta['classes']``
            follows.

    Returns:
        SegDataSample | list[SegDataSample]: one for a single image, a list
        for a list; ``pred_sem_seg`` indexes the vocabulary.
    """
    if vocabulary is not None:
        if isinstance(vocabulary, str):
            raise TypeError('vocabulary must be a list of class names, not one string '
                            f'({vocabulary!r}); split it first')
        head = _vocabulary_module(model)
        head.set_vocabulary(list(vocabulary))
        if head is getattr(model, 'decode_head', None):
            # EncoderDecoder copies these at build time (slide inference uses them)
            for attr in ('num_classes', 'out_channels'):
                if hasattr(model, attr):
                    setattr(model, attr, getattr(head, attr))
        meta = dict(getattr(model, 'dataset_meta', None) or {})
        meta['classes'] = tuple(head.vocabulary)
        if len(meta.get('palette', ())) < len(meta['classes']):
            meta['palette'] = make_palette(len(meta['classes']))
        model.dataset_meta = meta
    single = not isinstance(images, (list, tuple))
    imgs = [images] if single else list(images)
    if not imgs:
        raise ValueError('no images given')
    cfg = model.cfg
    init_default_scope(cfg.get('default_scope', 'clipdense'))
    pipeline = _test_pipeline(cfg)
    results = []
    for img in imgs:
        arr = load_image(img)
        data = dict(img=arr, img_path=img if isinstance(img, str) else None,
                    img_shape=arr.shape[:2], ori_shape=arr.shape[:2])
        data = pipeline(data)
        batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
        with torch.no_grad():
            results.extend(model.test_step(batch))
    return results[0] if single else results
