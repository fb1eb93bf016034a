"""ImageIndex: embedding cache (reuse / update / rebuild), retrieval, faiss
vs matrix path, bad input."""
import os
import os.path as osp
import re
import warnings

import cv2
import numpy as np
import pytest
import torch

from clipdense.models.reco.image_index import ImageIndex, list_images
from clipdense.testing import register_tiny_models

ARCH = 'clipdense-tiny-rn'


def _tiny_towers(seed):
    import open_clip

    from clipdense.models.text_encoders import OpenCLIPTextEncoder
    register_tiny_models()
    torch.manual_seed(seed)
    visual = open_clip.create_model(ARCH, pretrained=None).visual
    torch.manual_seed(seed)
    text = OpenCLIPTextEncoder(ARCH, None, templates=['a photo of a {}.', 'a {}.'])
    return visual, text


@pytest.fixture(scope='module')
def towers():
    return _tiny_towers(0)


def _write_images(folder, n, start=0, size=(40, 56)):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(start)
    for i in range(start, start + n):
        img = rng.randint(0, 255, size=(*size, 3), dtype=np.uint8)
        img[: size[0] // 2] = rng.randint(0, 255, size=3)  # some structure
        cv2.imwrite(osp.join(folder, f'img_{i:03d}.png'), img)


def _index(folder, cache, towers, **kw):
    visual, text = towers
    return ImageIndex(str(folder), arch=ARCH, cache_file=str(cache), batch_size=4,
                      progress=False, visual=visual, text_encoder=text, **kw)


def test_retrieval_returns_k_distinct_images(tmp_path, towers):
    _write_images(tmp_path / 'pool', 10)
    index = _index(tmp_path / 'pool', tmp_path / 'idx.npz', towers).build()
    assert len(index) == 10
    hits = index.retrieve(['cup', 'grass', 'a quantum xylophone of zebras'], k=6)
    assert [h.concept for h in hits] == ['cup', 'grass', 'a quantum xylophone of zebras']
    for h in hits:
        assert len(h.indices) == 6 and len(set(h.indices.tolist())) == 6
        assert len(set(h.paths)) == 6 and all(osp.isfile(p) for p in h.paths)
        assert np.all(np.diff(h.scores) <= 1e-7)  # descending
        # the scores are the cosines with the text embedding
        q = index.text_embeddings([h.concept]).numpy()[0]
        np.testing.assert_allclose(h.scores, index.embeddings[h.indices] @ q, atol=1e-5)
    # k = pool size returns every image once
    assert sorted(index.retrieve(['cup'], k=10)[0].indices.tolist()) == list(range(10))


def test_index_reused_updated_and_rebuilt(tmp_path, towers):
    pool = tmp_path / 'pool'
    _write_images(pool, 6)
    cache = tmp_path / 'cache' / 'idx.npz'
    first = _index(pool, cache, towers).build()
    assert first.last_build['status'] == 'built' and first.last_build['computed'] == 6
    assert cache.is_file()
    assert not [f for f in os.listdir(cache.parent) if f.endswith('.tmp')]

    again = _index(pool, cache, towers).build()
    assert again.last_build == dict(again.last_build, status='reused', computed=0, reused=6)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)

    # the folder changes: one image added, one modified -> only those two embedded
    _write_images(pool, 1, start=6)
    img = cv2.imread(str(pool / 'img_000.png'))
    cv2.imwrite(str(pool / 'img_000.png'), 255 - img)
    os.utime(pool / 'img_000.png', ns=(1, 10 ** 18))  # an mtime surely different
    upd = _index(pool, cache, towers).build()
    assert upd.last_build['status'] == 'updated'
    assert (upd.last_build['computed'], upd.last_build['reused']) == (2, 5)
    assert len(upd) == 7
    np.testing.assert_allclose(upd.embeddings[1:6], first.embeddings[1:6])
    # what was reused equals what a fresh build computes
    fresh = _index(pool, tmp_path / 'fresh.npz', towers).build()
    np.testing.assert_allclose(upd.embeddings, fresh.embeddings, atol=1e-5)

    # another model (other weights) -> everything recomputed
    other = _index(pool, cache, _tiny_towers(1)).build()
    assert other.last_build['status'] == 'built'
    assert other.last_build['reason'] == 'model or preprocessing changed'
    assert other.last_build['computed'] == 7
    assert not np.allclose(other.embeddings, upd.embeddings)
    # other preprocessing -> recomputed too
    pre = _index(pool, cache, _tiny_towers(1), mean=(0.5, 0.5, 0.5)).build()
    assert pre.last_build['status'] == 'built' and pre.last_build['computed'] == 7


def test_corrupt_cache_is_rebuilt(tmp_path, towers):
    _write_images(tmp_path / 'pool', 3)
    cache = tmp_path / 'idx.npz'
    cache.write_bytes(b'not a zip file')
    with pytest.warns(UserWarning, match='ignoring unreadable image index'):
        index = _index(tmp_path / 'pool', cache, towers).build()
    assert index.last_build['status'] == 'built' and len(index) == 3
    assert _index(tmp_path / 'pool', cache, towers).build().last_build['status'] == 'reused'


def test_truncated_cache_is_named_and_rebuilt(tmp_path, towers):
    """A cache cut short (a zip without its directory: zipfile.BadZipFile)
    is reported with its path and rebuilt, not a traceback (issue 26)."""
    _write_images(tmp_path / 'pool', 3)
    cache = tmp_path / 'idx.npz'
    _index(tmp_path / 'pool', cache, towers).build()
    data = cache.read_bytes()
    cache.write_bytes(data[:len(data) // 2])
    with pytest.warns(UserWarning,
                      match='ignoring unreadable image index ' + re.escape(str(cache))):
        index = _index(tmp_path / 'pool', cache, towers).build()
    assert index.last_build['status'] == 'built' and len(index) == 3


def test_faiss_and_matrix_paths_agree(tmp_path, towers):
    _write_images(tmp_path / 'pool', 2)
    index = _index(tmp_path / 'pool', tmp_path / 'idx.npz', towers, faiss_min_pool=100)
    rng = np.random.RandomState(0)
    emb = rng.randn(3000, 32).astype(np.float32)
    emb[100] = emb[200]  # an exact tie: ordered by index on both paths
    index.embeddings = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    index.files = [f'{i}.png' for i in range(3000)]
    q = index.embeddings[[100, 5, 7]] + 0.01 * rng.randn(3, 32).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    s_mat, i_mat = index.search(q, 20, use_faiss=False)
    s_fa, i_fa = index.search(q, 20, use_faiss=True)
    np.testing.assert_array_equal(i_mat, i_fa)
    np.testing.assert_array_equal(s_mat, s_fa)
    assert i_mat[0, 0] == 100 and i_mat[0, 1] == 200
    # the default picks faiss for a pool above the threshold, with the same result
    np.testing.assert_array_equal(index.search(q, 20)[1], i_mat)


def test_bad_input(tmp_path, towers):
    with pytest.raises(FileNotFoundError, match='image folder not found'):
        _index(tmp_path / 'missing', tmp_path / 'a.npz', towers).build()
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no images found'):
        _index(tmp_path / 'empty', tmp_path / 'b.npz', towers).build()
    # only non-image files
    (tmp_path / 'text').mkdir()
    (tmp_path / 'text' / 'notes.txt').write_text('hello')
    with pytest.warns(UserWarning, match='not images'), \
            pytest.raises(ValueError, match='found only 1 other files'):
        _index(tmp_path / 'text', tmp_path / 'c.npz', towers).build()

    pool = tmp_path / 'pool'
    _write_images(pool, 4)
    (pool / 'README.md').write_text('not an image')
    with pytest.warns(UserWarning, match='not images'):
        index = _index(pool, tmp_path / 'd.npz', towers).build()
    assert len(index) == 4 and index.skipped_files == ['README.md']
    with pytest.raises(ValueError, match=r'k=5 but the index .* holds only 4 images'):
        index.retrieve(['cup'], k=5)
    with pytest.raises(ValueError, match='positive integer'):
        index.retrieve(['cup'], k=0)
    with pytest.raises(TypeError, match='list of names'):
        index.retrieve('cup', k=1)

    # a file with an image extension that is not an image
    (pool / 'broken.png').write_bytes(b'\x89PNG garbage')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(ValueError, match="broken.png .*cannot be decoded.*on_unreadable='skip'"):
            _index(pool, tmp_path / 'e.npz', towers).build()
        skipped = _index(pool, tmp_path / 'e.npz', towers, on_unreadable='skip').build()
    assert len(skipped) == 4 and 'broken.png' not in skipped.files
    with pytest.raises(ValueError, match='on_unreadable'):
        _index(pool, tmp_path / 'f.npz', towers, on_unreadable='ignore')


def test_list_images_recursive(tmp_path):
    _write_images(tmp_path / 'a' / 'b', 2)
    (tmp_path / '.hidden').mkdir()
    _write_images(tmp_path / '.hidden', 1)
    images, others = list_images(str(tmp_path))
    assert images == ['a/b/img_000.png', 'a/b/img_001.png'] and others == []
