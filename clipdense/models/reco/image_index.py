"""A CLIP image index over any folder of unlabelled images, with top-k
retrieval per concept (ReCo's retrieval step; Shin et al., "ReCo: Retrieve
and Co-segment for Zero-shot Transfer", NeurIPS 2022, Sec. 3.1).

Example::

    from clipdense.models.reco.image_index import ImageIndex
    index = ImageIndex('data/synthetic/flat/img_dir/train',
                       arch='clipdense-synth-rn',
                       pretrained='work_dirs/quickstart/tiny_clip.pt',
                       cache_file='work_dirs/reco/index_flat_train.npz')
    index.build()                      # embeds (or reuses the cached file)
    hits = index.retrieve(['cup', 'grass'], k=10)
    hits[0].paths                      # the 10 images closest to "cup"

What is stored (one ``.npz`` file, written to a temporary file and renamed,
so a killed run never leaves a half-written index):

* ``embeddings``: ``(N, D)`` float32, L2-normalised CLIP image embeddings;
* ``meta``: JSON with the architecture, a hash of the image-tower weights,
  the preprocessing, the folder and, per image, its relative path, size and
  modification time.

:meth:`ImageIndex.build` reuses the file when all of that matches. When only
the folder changed (files added, removed or modified) the embeddings of the
unchanged files are kept and only the others are computed; when the model
or the preprocessing changed everything is recomputed.
``index.last_build`` says what happened.

Retrieval ranks by cosine similarity between the images and the concept's
text embedding, averaged over a template set (CLIP's prompt ensembling; ReCo
uses 80 ImageNet templates plus 5 scene templates, ``'maskclip'`` here). A
pool of at least ``faiss_min_pool`` images is searched with faiss
(``IndexFlatIP``: exact inner products); smaller pools with one matrix
product. Both return the same images, ordered by score and then by index.
"""
import hashlib
import json
import os
import os.path as osp
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

INDEX_FORMAT_VERSION = 1
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff',
                    '.ppm', '.pgm')
# open_clip's defaults (OpenAI CLIP statistics, RGB, 0..1 scale)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def list_images(folder: str, recursive: bool = True) -> Tuple[List[str], List[str]]:
    """Image files under ``folder`` by extension.

    Returns:
        tuple[list[str], list[str]]: sorted relative paths of the images and
        of the other files that were skipped (hidden files excluded).

    Raises:
        FileNotFoundError: ``folder`` does not exist or is not a folder.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'image folder not found: {folder!r} (give the folder '
                                'that holds the unlabelled images)')
    images, others = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        if not recursive:
            dirs[:] = []
        for name in files:
            if name.startswith('.'):
                continue
            rel = osp.relpath(osp.join(root, name), folder)
            (images if name.lower().endswith(IMAGE_EXTENSIONS) else others).append(rel)
    return sorted(images), sorted(others)


def read_rgb(path: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB image, or raise ``ValueError`` naming the file."""
    import cv2
    arr = cv2.imread(path, cv2.IMREAD_COLOR)
    if arr is None:
        raise ValueError(f'{path} has an image extension but cannot be decoded '
                         '(corrupt or not an image): remove it from the folder or '
                         "build the index with on_unreadable='skip'")
    return arr[:, :, ::-1]


def resize_center_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` (bicubic) and crop the centre
    ``size x size`` (CLIP's preprocessing)."""
    import cv2
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, int(round(h * scale))), max(size, int(round(w * scale)))
    if (nh, nw) != (h, w):
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_CUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(rgb[top:top + size, left:left + size])


def weights_hash(module: torch.nn.Module) -> str:
    """Hash of a module's parameters and buffers (names, shapes, dtypes,
    bytes): identifies the weights whatever file or tag they came from."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)  # 0-d tensors cannot be viewed as bytes
        h.update(f'{name}:{t.numel()}:{t.dtype}'.encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


@dataclass
class Retrieval:
    """Top-k images of one concept."""
    concept: str
    indices: np.ndarray  # (k,) rows of the index
    scores: np.ndarray  # (k,) cosine similarities, descending
    paths: List[str]  # (k,) absolute paths


class ImageIndex:
    """CLIP image embeddings of a folder, cached on disk, with top-k text
    retrieval.

    Args:
        folder (str): folder of images (searched recursively; files without
            an image extension are skipped and counted in
            ``skipped_files``).
        arch (str): open_clip architecture of the retrieval CLIP.
        pretrained (str, optional): its weights (tag or file, see
            :mod:`clipdense.models.utils.clip_loading`).
        cache_file (str, optional): where the index is stored; default
            ``$CLIPDENSE_CACHE/image_index/<arch>-<hash of folder>.npz``
            (``~/.cache/clipdense``).
        image_size (int, optional): input side; default: the architecture's.
        mean, std (Sequence[float]): normalisation (0..1 scale, RGB).
        templates (str | Sequence[str]): template set of the text side.
        batch_size (int): images per forward pass when embedding.
        faiss_min_pool (int): pools with at least this many images are
            searched with faiss; smaller ones with a matrix product.
        on_unreadable (str): ``'raise'`` (default) or ``'skip'`` for files
            with an image extension that cannot be decoded.
        device (str | torch.device, optional): where the CLIP runs.
        progress (bool): tqdm progress bar while embedding.
        visual (nn.Module, optional) and text_encoder (nn.Module, optional):
            prebuilt open_clip image tower / :class:`OpenCLIPTextEncoder`
            to use instead of building them from ``arch``/``pretrained``.
    """

    def __init__(self, folder: str, *, arch: str, pretrained: Optional[str] = None,
                 cache_file: Optional[str] = None, image_size: Optional[int] = None,
                 mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
                 templates: Union[str, Sequence[str]] = 'maskclip',
                 batch_size: int = 64, faiss_min_pool: int = 50000,
                 on_unreadable: str = 'raise',
                 device: Union[None, str, torch.device] = None,
                 progress: bool = True, visual=None, text_encoder=None):
        if on_unreadable not in ('raise', 'skip'):
            raise ValueError(f"on_unreadable must be 'raise' or 'skip', got {on_unreadable!r}")
        if int(batch_size) < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.folder = osp.abspath(folder)
        self.arch = arch.replace('/', '-')
        self.pretrained = pretrained
        self.templates = templates
        self.batch_size = int(batch_size)
        self.faiss_min_pool = int(faiss_min_pool)
        self.on_unreadable = on_unreadable
        self.progress = bool(progress)
        self.device = torch.device(device) if device is not None else None
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._visual = visual
        self._text_encoder = text_encoder
        self._image_size = image_size
        if cache_file is None:
            root = os.environ.get('CLIPDENSE_CACHE') or osp.expanduser('~/.cache/clipdense')
            tag = hashlib.sha1(self.folder.encode()).hexdigest()[:12]
            cache_file = osp.join(root, 'image_index', f'{self.arch}-{tag}.npz')
        self.cache_file = cache_file
        self.embeddings: Optional[np.ndarray] = None  # (N, D) float32
        self.files: List[str] = []  # relative paths, rows of `embeddings`
        self.skipped_files: List[str] = []
        self.last_build: Dict = {}
        self._faiss = None

    # ------------------------------------------------------------------
    @property
    def visual(self) -> torch.nn.Module:
        """The open_clip image tower (built on first use)."""
        if self._visual is None:
            from clipdense.models.utils.clip_loading import (create_open_clip,
                                                             load_tower_weights)
            model, sd, source = create_open_clip(self.arch, self.pretrained)
            if sd is not None:
                load_tower_weights(model, sd, 'visual', source=source.path,
                                   arch=self.arch)
            self._visual = model.visual
            if self._text_encoder is None:
                del model
        self._visual.eval()
        if self.device is not None:
            self._visual.to(self.device)
        return self._visual

    @property
    def text_encoder(self) -> torch.nn.Module:
        """The :class:`OpenCLIPTextEncoder` (built on first use)."""
        if self._text_encoder is None:
            from clipdense.models.text_encoders import OpenCLIPTextEncoder
            self._text_encoder = OpenCLIPTextEncoder(
                self.arch, self.pretrained, templates=self.templates)
            if self.device is not None:
                self._text_encoder.to(self.device)
        self._text_encoder.eval()
        return self._text_encoder

    @property
    def image_size(self) -> int:
        if self._image_size is None:
            import open_clip
            size = open_clip.get_model_config(self.arch)['vision_cfg']['image_size']
            self._image_size = int(size[0] if isinstance(size, (list, tuple)) else size)
        return int(self._image_size)

    def preprocessing(self) -> dict:
        """What turns a file into the tower's input (stored in the index)."""
        return dict(read='cv2-rgb-uint8', resize='shorter-side-bicubic-cv2',
                    crop='center', size=self.image_size, scale=1 / 255.0,
                    mean=list(self.mean), std=list(self.std))

    def model_key(self) -> dict:
        """Identity of the embedding function: architecture, weights hash,
        preprocessing and the index format."""
        return dict(version=INDEX_FORMAT_VERSION, arch=self.arch,
                    weights=weights_hash(self.visual),
                    preprocessing=self.preprocessing())

    def __len__(self) -> int:
        return 0 if self.embeddings is None else len(self.embeddings)

    @property
    def paths(self) -> List[str]:
        """Absolute paths of the indexed images, in row order."""
        return [osp.join(self.folder, f) for f in self.files]

    # ------------------------------------------------------------------
    def _scan(self) -> List[Tuple[str, int, int]]:
        images, others = list_images(self.folder)
        self.skipped_files = others
        if others:
            warnings.warn(f'{len(others)} files in {self.folder} are not images '
                          f'(by extension) and are not indexed, e.g. {others[:3]}')
        if not images:
            raise ValueError(
                f'no images found in {self.folder} (looked for '
                f'{", ".join(IMAGE_EXTENSIONS)}'
                + (f'; found only {len(others)} other files' if others else '')
                + '): point the index at a folder of images')
        out = []
        for rel in images:
            st = os.stat(osp.join(self.folder, rel))
            out.append((rel, int(st.st_size), int(st.st_mtime_ns)))
        return out

    def _load_cache(self) -> Optional[Tuple[dict, np.ndarray]]:
        if not osp.isfile(self.cache_file):
            return None
        try:
            with np.load(self.cache_file, allow_pickle=False) as z:
                meta = json.loads(bytes(z['meta']).decode())
                emb = np.asarray(z['embeddings'], dtype=np.float32)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            # e.g. a cache cut short by a killed process: rebuilt from the images
            warnings.warn(f'ignoring unreadable image index {self.cache_file} '
                          f'({type(e).__name__}: {e}); it is rebuilt')
            return None
        if len(meta.get('files', ())) != len(emb):
            return None
        return meta, emb

    def _save_cache(self, meta: dict, emb: np.ndarray):
        folder = osp.dirname(osp.abspath(self.cache_file))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(self.cache_file),
                                   suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                np.savez(f, embeddings=emb.astype(np.float32),
                         meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.cache_file)  # readers see the old or the new file
        except BaseException:
            if osp.exists(tmp):
                os.unlink(tmp)
            raise

    def load_batch(self, paths: Sequence[str]) -> torch.Tensor:
        """``(B, 3, S, S)`` normalised tower input for image files."""
        arrs = [resize_center_crop(read_rgb(p), self.image_size) for p in paths]
        x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float() / 255.0
        # a CPU batch; callers move it to the tower's device
        mean = torch.tensor(self.mean, device='cpu').view(1, 3, 1, 1)
        std = torch.tensor(self.std, device='cpu').view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def _embed(self, rels: Sequence[str]) -> Tuple[np.ndarray, List[str]]:
        from tqdm import tqdm
        visual = self.visual
        dev = next(visual.parameters()).device
        out, kept = [], []
        bar = tqdm(total=len(rels), desc=f'indexing {osp.basename(self.folder)}',
                   unit='img', disable=not self.progress)
        for i in range(0, len(rels), self.batch_size):
            chunk = list(rels[i:i + self.batch_size])
            arrs, ok = [], []
            for rel in chunk:
                try:
                    arrs.append(resize_center_crop(read_rgb(osp.join(self.folder, rel)),
                                                   self.image_size))
                    ok.append(rel)
                except ValueError:
                    if self.on_unreadable == 'raise':
                        bar.close()
                        raise
                    warnings.warn(f'skipping unreadable image {rel}')
            if arrs:
                x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float() / 255.0
                x = (x - torch.tensor(self.mean, device='cpu').view(1, 3, 1, 1)) / \
                    torch.tensor(self.std, device='cpu').view(1, 3, 1, 1)
                emb = F.normalize(visual(x.to(dev)).float(), dim=-1)
                out.append(emb.cpu().numpy())
                kept.extend(ok)
            bar.update(len(chunk))
        bar.close()
        if not out:
            return np.zeros((0, 0), np.float32), []
        return np.concatenate(out).astype(np.float32), kept

    def build(self, force: bool = False) -> 'ImageIndex':
        """Embed the folder or reuse the cache; see the module docstring.

        Returns:
            ImageIndex: ``self``; ``last_build`` holds ``status``
            (``'reused'``, ``'updated'`` or ``'built'``), ``reason``,
            ``computed`` and ``reused`` image counts.

        Raises:
            FileNotFoundError: the folder does not exist.
            ValueError: no images, or an unreadable image with
                ``on_unreadable='raise'``.
        """
        files = self._scan()
        key = self.model_key()
        cached = None if force else self._load_cache()
        entries = [list(f) for f in files]
        if cached is not None and cached[0].get('model') == key \
                and cached[0].get('files') == entries:
            meta, emb = cached
            status, reason, computed, reused = 'reused', 'unchanged', 0, len(emb)
            kept = [f[0] for f in files]
        else:
            old = {}
            if cached is None:
                reason = 'forced' if force else 'no index file'
            elif cached[0].get('model') != key:
                reason = 'model or preprocessing changed'
            else:
                reason = 'folder changed'
                for row, f in enumerate(cached[0]['files']):
                    old[tuple(f)] = row
            todo = [f[0] for f in files if tuple(f) not in old]
            new_emb, new_kept = self._embed(todo)
            new_rows = {rel: i for i, rel in enumerate(new_kept)}
            rows, kept = [], []
            for f in files:
                if tuple(f) in old:
                    rows.append(cached[1][old[tuple(f)]])
                    kept.append(f[0])
                elif f[0] in new_rows:
                    rows.append(new_emb[new_rows[f[0]]])
                    kept.append(f[0])
            if not rows:
                raise ValueError(f'none of the {len(files)} images in {self.folder} '
                                 'could be read')
            emb = np.stack(rows).astype(np.float32)
            status = 'updated' if old else 'built'
            computed, reused = len(new_kept), len(kept) - len(new_kept)
            keep = set(kept)
            # unreadable files that were skipped are not stored: the next
            # build tries them again
            meta = dict(model=key, folder=self.folder,
                        files=[list(f) for f in files if f[0] in keep])
            self._save_cache(meta, emb)
        self.embeddings = emb
        self.files = kept
        self._faiss = None
        self.last_build = dict(status=status, reason=reason, computed=computed,
                               reused=reused, size=len(emb), cache_file=self.cache_file)
        return self

    # ------------------------------------------------------------------
    def _require(self):
        if self.embeddings is None:
            self.build()

    def search(self, queries: Union[np.ndarray, torch.Tensor], k: int,
               use_faiss: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows by inner product with each query.

        Args:
            queries: ``(Q, D)`` L2-normalised query embeddings.
            k (int): images per query, ``1 <= k <= len(index)``.
            use_faiss (bool, optional): force one path; default: faiss when
                ``len(index) >= faiss_min_pool``.

        Returns:
            tuple[ndarray, ndarray]: scores ``(Q, k)`` (descending) and
            indices ``(Q, k)`` (distinct within a row; ties ordered by
            index).
        """
        self._require()
        n = len(self)
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f'k must be a positive integer, got {k!r}')
        if k > n:
            raise ValueError(f'k={k} but the index of {self.folder} holds only {n} '
                             f'images: use k <= {n} or add images to the folder')
        q = queries.detach().cpu().float().numpy() if isinstance(queries, torch.Tensor) \
            else np.asarray(queries, dtype=np.float32)
        q = np.ascontiguousarray(q.reshape(-1, q.shape[-1]), dtype=np.float32)
        if q.shape[1] != self.embeddings.shape[1]:
            raise ValueError(f'queries have {q.shape[1]} dims but the index '
                             f'{self.embeddings.shape[1]}: text and image side are '
                             'not the same CLIP')
        if use_faiss is None:
            use_faiss = n >= self.faiss_min_pool
        # candidates: the k + 8 best rows (faiss IndexFlatIP or one matrix
        # product), then exact scores of the candidates with the same
        # arithmetic on both paths, sorted by (-score, index): both paths
        # return the same images in the same order
        kk = min(n, k + 8)
        if use_faiss:
            import faiss
            if self._faiss is None:
                self._faiss = faiss.IndexFlatIP(self.embeddings.shape[1])
                self._faiss.add(np.ascontiguousarray(self.embeddings))
            _, cand = self._faiss.search(q, kk)
        else:
            full = q @ self.embeddings.T
            cand = np.argpartition(-full, kk - 1, axis=1)[:, :kk] if kk < n else \
                np.broadcast_to(np.arange(n), full.shape)
        cand = np.sort(np.asarray(cand, dtype=np.int64), axis=1)
        # an element-wise product and a sum along each row: the score of a
        # row does not depend on which other rows are candidates (a BLAS
        # matrix-vector product may sum in another order at block edges)
        scores = (self.embeddings[cand] * q[:, None, :]).sum(axis=-1)
        order = np.lexsort((cand, -scores), axis=-1)[:, :k]
        return (np.take_along_axis(scores, order, -1),
                np.take_along_axis(np.asarray(cand), order, -1))

    @torch.no_grad()
    def text_embeddings(self, concepts: Sequence[str]) -> torch.Tensor:
        """``(K, D)`` template-ensembled text embeddings of ``concepts``."""
        return self.text_encoder(list(concepts)).float()

    def retrieve(self, concepts: Sequence[str], k: int,
                 use_faiss: Optional[bool] = None) -> List[Retrieval]:
        """The ``k`` images closest to each concept (template ensemble).

        A concept with no good match still gets its ``k`` best images (with
        low scores); nothing fails.
        """
        if isinstance(concepts, str):
            raise TypeError('concepts must be a list of names, not one string')
        self._require()
        scores, idx = self.search(self.text_embeddings(concepts), k, use_faiss=use_faiss)
        paths = self.paths
        return [Retrieval(c, idx[i], scores[i], [paths[j] for j in idx[i]])
                for i, c in enumerate(concepts)]
