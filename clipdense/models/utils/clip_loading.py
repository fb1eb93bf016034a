"""Build open_clip models and load CLIP weights the way users actually have them.

``pretrained=`` anywhere in clipdense's CLIP towers accepts:

* an open_clip tag for the architecture (``'openai'``, ``'laion2b_s34b_b79k'``,
  ...). The file is looked up in the local caches first; when it is not
  there and the machine is offline (``HF_HUB_OFFLINE=1``,
  ``CLIPDENSE_OFFLINE=1``, or the download host is unreachable) loading
  fails at once with a message that names the file to download and where to
  put it. Online, the file is downloaded through open_clip's own helpers.
* a local open_clip checkpoint (``.pt``/``.pth``/``.bin``; a plain state
  dict, or one under ``'state_dict'``, ``'module.'`` prefixes stripped),
* an OpenAI CLIP TorchScript archive (``RN50.pt``, ``ViT-B-16.pt`` ...),
  reduced to its state dict WITHOUT running TorchScript
  (:func:`clipdense.fileio.torchscript_archive.read_torchscript_state_dict`:
  the module tree through an allow-listed unpickler, tensors straight from
  the zip's ``data/`` records). An archive that cannot be read that way is
  refused; ``trust_torchscript=True`` (or ``CLIPDENSE_TRUST_CHECKPOINTS=1``,
  ``--trust-checkpoint``) opens it with ``torch.jit.load`` instead, which
  runs the archive's code: only for files you trust.
* a ``.safetensors`` file.

Pickled files are read with ``torch.load(..., weights_only=True)``, so a file
that would run code on load is refused. Keys stay in open_clip's key space
(``visual.*`` for the image tower, ``transformer.*``/``token_embedding.*``...
or ``text.*`` for the text tower), so one full-CLIP file serves both the
image backbone and the text encoder.
"""
import difflib
import glob
import logging
import os
import socket
import threading
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlparse

import torch
from torch import nn

OFFLINE_ENV_VARS = ('CLIPDENSE_OFFLINE', 'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')
WEIGHT_SUFFIXES = ('.safetensors', '.bin', '.pt', '.pth')
# Keys OpenAI's TorchScript archives carry as attributes, not weights, and
# non-persistent buffers a traced/scripted archive stores anyway.
_NON_WEIGHT_KEYS = ('input_resolution', 'context_length', 'vocab_size',
                    'attn_mask', 'text.attn_mask')


def check_arch(arch: str) -> str:
    """Return the open_clip architecture name for ``arch`` or raise.

    ``'ViT-B/16'`` is accepted for ``'ViT-B-16'`` (OpenAI spelling).

    Raises:
        ValueError: the name is not an open_clip architecture; the message
            lists the closest known names.
    """
    import open_clip
    if not isinstance(arch, str) or not arch:
        raise ValueError(f'arch must be an open_clip architecture name, got {arch!r}')
    name = arch.replace('/', '-')
    models = open_clip.list_models()
    if name not in models:
        close = difflib.get_close_matches(name, models, n=6, cutoff=0.4)
        hint = (f' Closest names: {", ".join(close)}.' if close else '')
        raise ValueError(
            f'unknown open_clip architecture {arch!r}.{hint} '
            f'`open_clip.list_models()` lists all {len(models)}; tiny test '
            'architectures need clipdense.testing.register_tiny_models().')
    return name


def default_cache_dir() -> str:
    """Where tag weights are looked for (and downloaded to) outside the HF
    cache: ``$CLIPDENSE_WEIGHTS_DIR`` or open_clip's ``~/.cache/clip``."""
    return os.path.expanduser(
        os.environ.get('CLIPDENSE_WEIGHTS_DIR', '') or '~/.cache/clip')


def _hf_cache_root() -> str:
    root = os.environ.get('HF_HUB_CACHE') or os.environ.get('HUGGINGFACE_HUB_CACHE')
    if not root:
        home = os.environ.get('HF_HOME') or os.path.join(
            os.environ.get('XDG_CACHE_HOME', '~/.cache'), 'huggingface')
        root = os.path.join(home, 'hub')
    return os.path.expanduser(root)


def is_offline() -> bool:
    """True when an offline switch is set (see :data:`OFFLINE_ENV_VARS`)."""
    return any(os.environ.get(v, '').strip().lower() in ('1', 'true', 'yes', 'on')
               for v in OFFLINE_ENV_VARS)


def _host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Cheap reachability probe so that a machine without internet fails in
    seconds instead of hanging in a download. DNS has no timeout of its own,
    hence the thread."""
    result = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 1.0)
    return bool(result and result[0])


@dataclass
class WeightSource:
    """Where a ``pretrained=`` value resolved to."""
    path: str
    pretrained: str
    tag_cfg: Dict = field(default_factory=dict)

    @property
    def quick_gelu(self) -> Optional[bool]:
        """QuickGELU flag of a tag (OpenAI weights need it), else None."""
        return self.tag_cfg.get('quick_gelu') if self.tag_cfg else None


def _hf_parts(hf_hub: str) -> Tuple[str, str]:
    # open_clip stores 'org/repo/filename' or 'org/repo/' (default filename)
    from open_clip.constants import HF_WEIGHTS_NAME
    model_id, filename = os.path.split(hf_hub)
    return model_id, filename or HF_WEIGHTS_NAME


def _safe_alternatives(filename: str) -> List[str]:
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    alts = []
    if filename == HF_WEIGHTS_NAME:
        alts.append(HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith(('.bin', '.pth')):
        alts.append(filename[:-4] + '.safetensors')
    return alts + [filename]


def _find_in_hf_cache(model_id: str, filename: str) -> Optional[str]:
    root = _hf_cache_root()
    try:  # exact lookup of huggingface_hub, no network
        from huggingface_hub import try_to_load_from_cache
        found = try_to_load_from_cache(model_id, filename, cache_dir=root)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    except Exception:  # noqa: BLE001 - missing package or odd cache: fall back
        pass
    pattern = os.path.join(root, 'models--' + model_id.replace('/', '--'),
                           'snapshots', '*', filename)
    hits = sorted(glob.glob(pattern), key=os.path.getmtime, reverse=True)
    return hits[0] if hits else None


def canonical_local_path(arch: str, tag: str, suffix: str = '.pt',
                         cache_dir: Optional[str] = None) -> str:
    """The file name clipdense looks for first for ``(arch, tag)``."""
    return os.path.join(cache_dir or default_cache_dir(), f'{arch}-{tag}{suffix}')


def _missing_weights_error(arch, tag, cfg, cache_dir, reason) -> RuntimeError:
    lines = [f"pretrained='{tag}' for '{arch}': the weight file is not in the "
             f'local cache and cannot be downloaded ({reason}).',
             'Download it on a machine with internet access and either']
    url = cfg.get('url', '')
    hf_hub = cfg.get('hf_hub', '')
    if url:
        lines.append(f'  - fetch {url}')
        target = os.path.join(cache_dir, os.path.basename(urlparse(url).path))
        lines.append(f'    and save it as {target}')
    if hf_hub:
        model_id, filename = _hf_parts(hf_hub)
        lines.append(f'  - fetch https://huggingface.co/{model_id}/resolve/main/{filename}')
        suffix = os.path.splitext(filename)[1] or '.bin'
        lines.append(f'    and save it as {canonical_local_path(arch, tag, suffix, cache_dir)}')
        lines.append('    (or populate the HF cache with '
                     f'`huggingface-cli download {model_id} {filename}`)')
    lines.append("or pass the file's path directly: pretrained='/path/to/file' "
                 '(open_clip checkpoint, OpenAI TorchScript archive or .safetensors).')
    return RuntimeError('\n'.join(lines))


def resolve_pretrained(arch: str, pretrained: str, *,
                       cache_dir: Optional[str] = None) -> WeightSource:
    """Turn a ``pretrained=`` value into a local file.

    Args:
        arch (str): open_clip architecture name (already checked).
        pretrained (str): a file path or an open_clip tag of ``arch``.
        cache_dir (str, optional): where tag files are looked for/downloaded;
            defaults to :func:`default_cache_dir`.

    Returns:
        WeightSource: the local path (and the tag config for tags).

    Raises:
        FileNotFoundError: a path-like value that does not exist.
        ValueError: neither a file nor a tag of ``arch``; lists the tags.
        RuntimeError: a known tag whose file is not cached while offline.
    """
    import open_clip
    cache_dir = os.path.expanduser(cache_dir) if cache_dir else default_cache_dir()
    path = os.path.expanduser(str(pretrained))
    if os.path.isfile(path):
        return WeightSource(path=path, pretrained=str(pretrained))
    cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if not cfg:
        if os.sep in path or path.endswith(WEIGHT_SUFFIXES):
            raise FileNotFoundError(f'pretrained weight file not found: {path}')
        tags = open_clip.list_pretrained_tags_by_model(arch)
        close = difflib.get_close_matches(str(pretrained), tags, n=3)
        raise ValueError(
            f"pretrained='{pretrained}' is neither an existing file nor an "
            f"open_clip tag of '{arch}'. Tags of '{arch}': {tags or 'none'}"
            + (f'; closest: {close}' if close else '') + '.')
    tag = str(pretrained)
    if cfg.get('file'):
        return WeightSource(path=cfg['file'], pretrained=tag, tag_cfg=cfg)

    # 1. the canonical clipdense name, 2. open_clip's URL cache, 3. HF cache
    for suffix in WEIGHT_SUFFIXES:
        cand = canonical_local_path(arch, tag, suffix, cache_dir)
        if os.path.isfile(cand):
            return WeightSource(path=cand, pretrained=tag, tag_cfg=cfg)
    url = cfg.get('url', '')
    if url:
        cand = os.path.join(cache_dir, os.path.basename(urlparse(url).path))
        if os.path.isfile(cand):
            return WeightSource(path=cand, pretrained=tag, tag_cfg=cfg)
    hf_hub = cfg.get('hf_hub', '')
    if hf_hub:
        model_id, filename = _hf_parts(hf_hub)
        for name in _safe_alternatives(filename):
            cand = _find_in_hf_cache(model_id, name)
            if cand:
                return WeightSource(path=cand, pretrained=tag, tag_cfg=cfg)

    if is_offline():
        set_vars = [v for v in OFFLINE_ENV_VARS if os.environ.get(v)]
        raise _missing_weights_error(arch, tag, cfg, cache_dir,
                                     f'offline: {", ".join(set_vars)} is set')
    host = 'huggingface.co' if hf_hub else urlparse(url).hostname
    if not _host_reachable(host):
        raise _missing_weights_error(arch, tag, cfg, cache_dir,
                                     f'{host} is unreachable')
    try:
        if hf_hub:
            from open_clip.pretrained import download_pretrained_from_hf
            model_id, filename = _hf_parts(hf_hub)
            target = download_pretrained_from_hf(model_id, filename=filename)
        else:
            from open_clip.pretrained import download_pretrained_from_url
            target = download_pretrained_from_url(url, cache_dir=cache_dir)
    except Exception as e:  # noqa: BLE001 - re-raised with the manual route
        raise _missing_weights_error(arch, tag, cfg, cache_dir,
                                     f'download failed: {e}') from e
    return WeightSource(path=target, pretrained=tag, tag_cfg=cfg)


def _read_torchscript(path: str, trust_torchscript: Optional[bool]):
    """State dict of a TorchScript archive; runs none of its code unless
    the caller trusts the file and the safe reader cannot read it."""
    from clipdense.fileio import TRUST_ENV, trust_checkpoints_enabled
    from clipdense.fileio.torchscript_archive import (UnsafeTorchScriptError,
                                                      read_torchscript_state_dict)
    try:
        return read_torchscript_state_dict(path)
    except UnsafeTorchScriptError as e:
        trusted = trust_checkpoints_enabled() if trust_torchscript is None \
            else bool(trust_torchscript)
        if not trusted:
            raise UnsafeTorchScriptError(
                f'Refusing the TorchScript archive {e}. A genuine OpenAI CLIP '
                'file reads without this; it may have been tampered with. If '
                'you trust it, pass trust_torchscript=True, set '
                f'{TRUST_ENV}=1 or give --trust-checkpoint to the tools '
                '(torch.jit.load then runs its code).') from None
        warnings.warn(f'{path}: loading a TorchScript archive with '
                      'torch.jit.load, which runs code from the file '
                      '(trusted by request).')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)  # jit deprecation notice
            return torch.jit.load(path, map_location='cpu').state_dict()


def load_weight_file(path: str, *, trust_torchscript: Optional[bool] = None
                     ) -> Tuple[Dict[str, torch.Tensor], bool]:
    """Read a weight file into a flat CPU state dict. Nothing from the
    file is run.

    Args:
        path (str): ``.safetensors``, TorchScript archive, or a pickled
            state dict (optionally under ``'state_dict'``).
        trust_torchscript (bool, optional): open a TorchScript archive that
            the safe reader refuses with ``torch.jit.load`` (runs its code).
            ``None`` follows ``CLIPDENSE_TRUST_CHECKPOINTS``.

    Returns:
        tuple[dict, bool]: the state dict and whether the file was an
        OpenAI TorchScript archive (such weights were trained with QuickGELU).

    Raises:
        ValueError: the file holds no state dict, or ``torch.load`` with
            ``weights_only=True`` refused it.
        UnsafeTorchScriptError: a TorchScript archive that cannot be read
            without running its code, and ``trust_torchscript`` is off.
    """
    from clipdense.fileio.torchscript_archive import is_torchscript_archive
    path = os.path.expanduser(str(path))
    is_openai = False
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        ckpt = load_file(path, device='cpu')
    elif is_torchscript_archive(path):
        ckpt = _read_torchscript(path, trust_torchscript)
        is_openai = True
    else:
        try:
            try:
                ckpt = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
            except RuntimeError:  # legacy (non-zip) format cannot be mmapped
                ckpt = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:  # noqa: BLE001
            if 'weights_only' in str(e) or 'Unsupported global' in str(e):
                raise ValueError(
                    f'{path} is not a plain weights file: torch.load(weights_only=True) '
                    f'refused it ({str(e).splitlines()[0]}). Re-save the state dict '
                    'with torch.save(model.state_dict(), path).') from e
            raise
    if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
        ckpt = ckpt['state_dict']
    if not isinstance(ckpt, dict) or not ckpt or not all(
            isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ValueError(f'{path} does not hold a state dict of tensors')
    if all(k.startswith('module.') for k in ckpt):
        ckpt = {k[len('module.'):]: v for k, v in ckpt.items()}
    sd = {k: v for k, v in ckpt.items() if k not in _NON_WEIGHT_KEYS}
    return sd, is_openai


def create_open_clip(arch: str, pretrained: Optional[str] = None, *,
                     quick_gelu: Optional[bool] = None,
                     cache_dir: Optional[str] = None,
                     vision_overrides: Optional[Dict] = None):
    """Create a randomly initialised open_clip model for ``arch`` and read
    the weights named by ``pretrained`` (not loaded yet).

    Args:
        arch (str): open_clip architecture name.
        pretrained (str, optional): see the module docstring.
        quick_gelu (bool, optional): force QuickGELU. ``None`` picks it from
            the tag (OpenAI tags need it) or from the file type (OpenAI
            TorchScript archives); otherwise the architecture's default.
        cache_dir (str, optional): see :func:`resolve_pretrained`.
        vision_overrides (dict, optional): entries merged into the
            architecture's ``vision_cfg`` (e.g. ``timm_drop_path``).

    Returns:
        tuple: ``(model, state_dict or None, source or None)``.
    """
    import open_clip
    arch = check_arch(arch)
    state_dict, source, is_openai = None, None, False
    if pretrained:
        source = resolve_pretrained(arch, pretrained, cache_dir=cache_dir)
        state_dict, is_openai = load_weight_file(source.path)
    if quick_gelu is None:
        quick_gelu = bool(source.quick_gelu) if source and source.quick_gelu is not None \
            else is_openai
    kwargs = {}
    if vision_overrides:
        cfg = open_clip.get_model_config(arch)
        kwargs['vision_cfg'] = {**cfg['vision_cfg'], **vision_overrides}
    # open_clip logs 'No pretrained weights loaded ... initialized randomly'
    # on the root logger; clipdense loads the weights itself right after.
    root = logging.getLogger()
    quiet = _DropMessages('No pretrained weights loaded')
    root.addFilter(quiet)
    try:
        model = open_clip.create_model(arch, pretrained=None,
                                       force_quick_gelu=bool(quick_gelu), **kwargs)
    finally:
        root.removeFilter(quiet)
    return model, state_dict, source


class _DropMessages(logging.Filter):

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _add_missing_visual_prefix(model: nn.Module, sd: Dict[str, torch.Tensor]):
    """A bare image-tower state dict (``model.visual.state_dict()``) gets
    the ``visual.`` prefix back."""
    if any(k.startswith('visual.') for k in sd):
        return sd
    own = set(model.visual.state_dict())
    if own and len(own & set(sd)) >= len(own) // 2:
        return {f'visual.{k}': v for k, v in sd.items()}
    return sd


def _is_visual_key(k: str) -> bool:
    return k.startswith('visual.')


def _is_text_key(k: str) -> bool:
    return not k.startswith('visual.') and k != 'logit_bias'


def _to_model_format(model: nn.Module, sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Bring a CLIP state dict into ``model``'s layout (as open_clip's
    ``load_checkpoint`` does): old flat text keys vs. ``text.*``."""
    from open_clip.model import convert_to_custom_text_state_dict
    has_flat_text = hasattr(model, 'positional_embedding')
    if not has_flat_text and 'text_projection' in sd:
        sd = convert_to_custom_text_state_dict(sd)
    elif has_flat_text and any(k.startswith('text.') for k in sd):
        sd = {k[len('text.'):] if k.startswith('text.') else k: v for k, v in sd.items()}
    # backbones saved by clipdense modules carry the same 'visual.' prefix;
    # a whole-segmentor checkpoint has it under 'backbone.'.
    if not any(k.startswith('visual.') for k in sd) and any(
            k.startswith('backbone.visual.') for k in sd):
        sd = {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
    ls = getattr(model, 'logit_scale', None)
    if 'logit_scale' in sd and ls is not None and sd['logit_scale'].ndim != ls.ndim:
        sd['logit_scale'] = sd['logit_scale'].reshape(ls.shape)
    return sd


def load_tower_weights(model: nn.Module, state_dict: Dict[str, torch.Tensor],
                       tower: str, *, strict: bool = True,
                       source: str = 'the weight file', arch: str = '') -> Dict[str, List[str]]:
    """Load one tower of a full open_clip model from a CLIP state dict.

    Args:
        model (nn.Module): the open_clip ``CLIP``/``CustomTextCLIP``.
        state_dict (dict): weights in open_clip's key space.
        tower (str): ``'visual'`` (keys ``visual.*``) or ``'text'`` (all the
            others: the text tower and ``logit_scale``).
        strict (bool): refuse weights that miss keys of the tower, carry
            unexpected ones, or have other shapes.
        source (str): file name for messages.
        arch (str): architecture name for messages.

    Returns:
        dict: ``missing``, ``unexpected`` and ``mismatched`` key lists.

    Raises:
        ValueError: with ``strict`` and any mismatch; the message counts
            each kind (weights for another architecture).
    """
    select = {'visual': _is_visual_key, 'text': _is_text_key}[tower]
    sd = _to_model_format(model, state_dict)
    if tower == 'visual':
        sd = _add_missing_visual_prefix(model, sd)
    own = {k: v for k, v in model.state_dict().items() if select(k)}
    given = {k: v for k, v in sd.items() if select(k)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    mismatched = sorted(k for k in set(own) & set(given)
                        if own[k].shape != given[k].shape)
    report = dict(missing=missing, unexpected=unexpected, mismatched=mismatched)
    if missing or unexpected or mismatched:
        def ex(keys):
            return f' (e.g. {", ".join(keys[:3])})' if keys else ''
        msg = (f'{source} does not fit the {tower} tower of {arch or "the model"}: '
               f'{len(missing)} missing{ex(missing)}, {len(unexpected)} unexpected'
               f'{ex(unexpected)}, {len(mismatched)} shape-mismatched{ex(mismatched)} '
               f'keys out of {len(own)}.')
        if strict:
            raise ValueError(msg + ' Is it a checkpoint of another architecture? '
                             'Set strict=False to load the matching keys anyway.')
        warnings.warn(msg + ' Loading the matching keys only (strict=False).')
    load = {k: v for k, v in given.items() if k in own and k not in set(mismatched)}
    model.load_state_dict(load, strict=False)
    return report
