"""Retrieval index: save/load round trip, atomic writes, clear errors, exact top-k."""

from __future__ import annotations

import numpy as np
import pytest

from semi3lib.retrieval import index as retrieval
from semi3lib.retrieval.index import (
    IndexCompatibilityError,
    IndexFormatError,
    RetrievalIndex,
    check_compatible,
    load_index,
    save_index,
    search,
    search_arrays,
)

IDENTITY = {"backbone": "efficientnet_lite0", "embed_dim": 16, "config_hash": "abc123",
            "checkpoint_sha256": "f00d"}


def _index(n=300, d=16, seed=0) -> RetrievalIndex:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return RetrievalIndex(embeddings=x, paths=[f"photos/{i:04d}.jpg" for i in range(n)],
                          model_identity=dict(IDENTITY), labels=[f"c{i % 7}" for i in range(n)])


def test_save_load_round_trip(tmp_path):
    index = _index()
    path = save_index(index, tmp_path / "gallery.npz")
    loaded = load_index(path)
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    assert loaded.embeddings.dtype == np.float32
    assert (loaded.paths, loaded.labels, loaded.model_identity) == (
        index.paths, index.labels, index.model_identity)
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.npz"]  # no temporary left


def test_numpy_labels_round_trip(tmp_path):
    index = _index(n=20)
    index = RetrievalIndex(index.embeddings, index.paths, IDENTITY, labels=np.arange(20) % 3)
    assert load_index(save_index(index, tmp_path / "g.npz")).labels == [i % 3 for i in range(20)]


def test_failed_save_keeps_the_old_file_and_leaves_no_partial_file(tmp_path, monkeypatch):
    path = save_index(_index(seed=1), tmp_path / "gallery.npz")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(retrieval.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_index(_index(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.npz"]


def test_unserialisable_identity_fails_before_writing(tmp_path):
    index = _index()
    index.model_identity["bad"] = object()
    with pytest.raises(TypeError):
        save_index(index, tmp_path / "gallery.npz")
    assert list(tmp_path.iterdir()) == []


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_index(tmp_path / "nope.npz")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other_npz", "version"])
def test_corrupt_or_foreign_file_is_a_clear_error(tmp_path, monkeypatch, damage):
    path = save_index(_index(), tmp_path / "gallery.npz")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "garbage":
        path.write_bytes(b"not an index at all")
    elif damage == "other_npz":
        with open(path, "wb") as f:
            np.savez(f, x=np.zeros(3))
    else:
        with monkeypatch.context() as m:
            m.setattr(retrieval, "FORMAT_VERSION", retrieval.FORMAT_VERSION + 1)
            save_index(_index(), path)
    match = "format version" if damage == "version" else "not a"
    with pytest.raises(IndexFormatError, match=match):
        load_index(path)


def test_check_compatible_accepts_same_model_and_names_differences():
    index = _index()
    check_compatible(index, dict(IDENTITY))
    check_compatible(index, {"backbone": "efficientnet_lite0"})  # fewer keys: compared subset
    with pytest.raises(IndexCompatibilityError, match="checkpoint_sha256.*'f00d'.*'beef'"):
        check_compatible(index, {**IDENTITY, "checkpoint_sha256": "beef"})
    with pytest.raises(IndexCompatibilityError, match="embed_dim"):
        check_compatible(index, {"embed_dim": 512})
    with pytest.raises(IndexCompatibilityError, match="keys"):
        check_compatible(index, {"backbone": "efficientnet_lite0"}, strict=True)


def test_exact_search_returns_the_true_top_k():
    index = _index(n=500)
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    scores, idx = search_arrays(index.embeddings, queries, k=10)
    for q, s, i in zip(queries, scores, idx):
        full = index.embeddings @ q
        order = np.argsort(-full, kind="stable")[:10]
        np.testing.assert_array_equal(i, order)
        np.testing.assert_allclose(s, full[order], rtol=1e-6)


def test_exact_search_breaks_ties_by_gallery_position():
    emb = np.repeat(np.eye(4, dtype=np.float32), 5, axis=0)  # 5 identical copies of each
    index = RetrievalIndex(emb, [str(i) for i in range(20)], {})
    hits = search(index, np.array([0, 1, 0, 0], np.float32), k=7)
    assert [p for p, _ in hits] == ["5", "6", "7", "8", "9", "0", "1"]


def test_search_returns_paths_and_scores_for_one_or_many_queries():
    index = _index()
    single = search(index, index.embeddings[42], k=3)
    assert single[0][0] == "photos/0042.jpg" and single[0][1] == pytest.approx(1.0, abs=1e-5)
    assert len(single) == 3 and single[0][1] >= single[1][1] >= single[2][1]
    many = search(index, index.embeddings[:4], k=2)
    assert [r[0][0] for r in many] == [f"photos/{i:04d}.jpg" for i in range(4)]
    assert len(search(index, index.embeddings[0], k=10_000)) == len(index)
    with pytest.raises(ValueError, match="dimension"):
        search(index, np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="backend"):
        search(index, index.embeddings[0], backend="annoy")


def test_faiss_flat_equals_exact():
    pytest.importorskip("faiss")
    index = _index(n=2000, d=32)
    queries = np.random.default_rng(4).standard_normal((8, 32)).astype(np.float32)
    exact = search(index, queries, k=10)
    flat = search(index, queries, k=10, backend="faiss-flat")
    assert [[p for p, _ in r] for r in flat] == [[p for p, _ in r] for r in exact]
    for rf, re in zip(flat, exact):
        np.testing.assert_allclose([s for _, s in rf], [s for _, s in re], rtol=1e-5)


@pytest.mark.parametrize("backend", ["faiss-hnsw", "faiss-ivf"])
def test_approximate_backends_find_most_of_the_true_top_k(backend):
    pytest.importorskip("faiss")
    index = _index(n=3000, d=16)
    queries = index.embeddings[:20] + 0.05
    exact = search(index, queries, k=10)
    approx = search(index, queries, k=10, backend=backend)
    recall = np.mean([len({p for p, _ in a} & {p for p, _ in e}) / 10
                      for a, e in zip(approx, exact)])
    assert recall >= 0.9
