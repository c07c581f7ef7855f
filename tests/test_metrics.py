"""Retrieval metrics against independent references: scikit-learn's average precision per
query, and brute-force loops over a stable full sort for the rank metrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from semi3lib.engine.metrics import (
    per_query_ap,
    per_query_metrics,
    precision_recall_curve_mean,
    retrieval_metrics,
)


def _normalised(rng: np.random.Generator, n: int, d: int, dtype=np.float64) -> np.ndarray:
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


def _data(seed=0, q=60, g=500, d=16, classes=6, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (_normalised(rng, q, d, dtype), rng.integers(0, classes, q),
            _normalised(rng, g, d, dtype), rng.integers(0, classes, g))


def _quantised(seed=0, q=60, g=500, classes=6):
    """Integer-valued embeddings: exact integer scores, so many ties, independent of the
    summation order of any BLAS."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-1, 2, (q, 4)).astype(np.float32), rng.integers(0, classes, q),
            rng.integers(-1, 2, (g, 4)).astype(np.float32), rng.integers(0, classes, g))


def _sklearn_ap(q, ql, g, gl) -> np.ndarray:
    scores = q.astype(np.float64) @ g.astype(np.float64).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no-positive queries warn; AP is 0 there
        return np.array([average_precision_score(gl == ql[i], scores[i]) for i in range(len(q))])


def _brute_force_rank_metrics(q, ql, g, gl, k: int) -> tuple[np.ndarray, np.ndarray]:
    """P@k and AP@k = sum_{i<=k} P(i) rel(i) / hits_k from a stable full sort (ties in
    gallery order)."""
    scores = q.astype(np.float64) @ g.astype(np.float64).T
    p_at, ap_at = [], []
    for i in range(len(q)):
        rel = gl[np.argsort(-scores[i], kind="stable")[:k]] == ql[i]
        hits = np.cumsum(rel)
        p_at.append(hits[-1] / k)
        ap_at.append(np.sum(rel * hits / np.arange(1, len(rel) + 1)) / max(hits[-1], 1))
    return np.array(p_at), np.array(ap_at)


@pytest.mark.parametrize("chunk_size", [1, 7, 256])
def test_ap_matches_sklearn_per_query(chunk_size):
    q, ql, g, gl = _data()
    np.testing.assert_allclose(per_query_ap(q, ql, g, gl, chunk_size=chunk_size),
                               _sklearn_ap(q, ql, g, gl), atol=1e-6, rtol=0)


@pytest.mark.parametrize("chunk_size", [1, 13])
def test_ap_matches_sklearn_with_tied_scores(chunk_size):
    q, ql, g, gl = _quantised()
    scores = q @ g.T
    assert len(np.unique(scores[0])) < 20  # the data really is full of ties
    np.testing.assert_allclose(per_query_ap(q, ql, g, gl, chunk_size=chunk_size),
                               _sklearn_ap(q, ql, g, gl), atol=1e-6, rtol=0)


def test_ap_matches_sklearn_with_a_single_positive():
    q, ql, g, gl = _data(seed=1, g=300)
    gl = np.where(gl == 0, 1, gl)
    gl[17] = 0  # class 0 has exactly one photo
    ql[:10] = 0
    ap = per_query_ap(q, ql, g, gl, chunk_size=4)
    np.testing.assert_allclose(ap, _sklearn_ap(q, ql, g, gl), atol=1e-6, rtol=0)
    # With one positive, AP is 1 / its rank.
    scores = q @ g.T
    rank = (scores[:10] >= scores[:10, 17:18]).sum(axis=1)
    np.testing.assert_allclose(ap[:10], 1.0 / rank, atol=1e-12)


@pytest.mark.parametrize("make", [_data, _quantised])
def test_rank_metrics_match_brute_force_loop(make):
    q, ql, g, gl = make(seed=2)
    ks = (1, 10, 25, 200, 700)  # 700 > gallery size: P@k still divides by k
    per_query = per_query_metrics(q, ql, g, gl, ks=ks, map_at=(10, 200), chunk_size=9)
    for k in ks:
        p_at, ap_at = _brute_force_rank_metrics(q, ql, g, gl, k)
        np.testing.assert_allclose(per_query[f"P@{k}"], p_at, atol=1e-12)
        if k in (10, 200):
            np.testing.assert_allclose(per_query[f"mAP@{k}"], ap_at, atol=1e-12)


def test_means_and_keys():
    q, ql, g, gl = _data(seed=3)
    m = retrieval_metrics(q, ql, g, gl, chunk_size=11)
    assert set(m) == {"mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200", "queries",
                      "gallery", "queries_without_positives"}
    assert m["mAP@all"] == pytest.approx(_sklearn_ap(q, ql, g, gl).mean(), abs=1e-9)
    assert m["P@200"] == pytest.approx(_brute_force_rank_metrics(q, ql, g, gl, 200)[0].mean())
    assert (m["queries"], m["gallery"], m["queries_without_positives"]) == (60, 500, 0)


def test_numpy_and_torch_inputs_agree():
    q, ql, g, gl = _data(seed=4, dtype=np.float32)
    from_numpy = retrieval_metrics(q, ql, g, gl)
    from_torch = retrieval_metrics(torch.from_numpy(q), torch.from_numpy(ql),
                                   torch.from_numpy(g), torch.from_numpy(gl))
    assert from_numpy == from_torch


def test_string_labels_work():
    q, ql, g, gl = _data(seed=5)
    names = np.array(["cat", "dog", "owl", "bee", "cow", "ant"])
    assert retrieval_metrics(q, names[ql], g, names[gl]) == retrieval_metrics(q, ql, g, gl)


def test_queries_without_positives_score_zero_or_are_excluded():
    q, ql, g, gl = _data(seed=6)
    ql[:5] = 99  # no photo of class 99
    ap = per_query_ap(q, ql, g, gl)
    assert np.all(ap[:5] == 0)
    zero = retrieval_metrics(q, ql, g, gl)
    excluded = retrieval_metrics(q, ql, g, gl, no_positive="exclude")
    assert zero["queries_without_positives"] == excluded["queries_without_positives"] == 5
    assert zero["mAP@all"] == pytest.approx(ap.mean())
    assert excluded["mAP@all"] == pytest.approx(ap[5:].mean())
    assert excluded["P@10"] == pytest.approx(zero["P@10"] * 60 / 55)


def test_perfect_ranking_scores_one():
    rng = np.random.default_rng(7)
    centres = _normalised(rng, 4, 8)
    gl = np.repeat(np.arange(4), 30)
    m = retrieval_metrics(centres, np.arange(4), centres[gl], gl, ks=(10, 30), map_at=(30,))
    assert m["mAP@all"] == m["mAP@30"] == m["P@10"] == m["P@30"] == 1.0


def test_pr_curve_matches_brute_force_interpolation():
    q, ql, g, gl = _quantised(seed=8)
    levels, mean = precision_recall_curve_mean(q, ql, g, gl, num_levels=11, chunk_size=5)
    scores = q @ g.T
    curves = []
    for i in range(len(q)):
        y = gl == ql[i]
        thresholds = np.unique(scores[i])
        prec = np.array([y[scores[i] >= t].mean() for t in thresholds])
        rec = np.array([y[scores[i] >= t].sum() / y.sum() for t in thresholds])
        curves.append([prec[rec >= r - 1e-12].max() for r in levels])
    np.testing.assert_allclose(levels, np.linspace(0, 1, 11))
    np.testing.assert_allclose(mean, np.mean(curves, axis=0), atol=1e-12)


def test_bad_inputs_are_clear_errors():
    q, ql, g, gl = _data()
    with pytest.raises(ValueError, match="embeddings must be"):
        retrieval_metrics(q[:, :3], ql, g, gl)
    with pytest.raises(ValueError, match="labels must be"):
        retrieval_metrics(q, ql[:-1], g, gl)
    q[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(q, ql, g, gl)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu():
    q, ql, g, gl = _quantised(seed=9)
    cpu = per_query_metrics(q, ql, g, gl, chunk_size=7)
    gpu = per_query_metrics(torch.from_numpy(q).cuda(), ql, g, gl, chunk_size=7)
    for key in cpu:
        np.testing.assert_allclose(gpu[key], cpu[key], atol=1e-12)


def test_torch_path_used_on_gpu_matches_numpy_path(monkeypatch):
    """The GPU code path (torch sort/searchsorted), exercised on CPU tensors."""
    import semi3lib.engine.metrics as metrics

    q, ql, g, gl = _quantised(seed=10)
    numpy_path = per_query_metrics(q, ql, g, gl, ks=(1, 10, 200), map_at=(10, 200), chunk_size=7)
    levels, numpy_curve = precision_recall_curve_mean(q, ql, g, gl, chunk_size=7)
    original = metrics._Ranking.__init__

    def torch_path(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.on_cpu = False
        self._gallery_t = torch.as_tensor(self.gallery, device=self.device)

    monkeypatch.setattr(metrics._Ranking, "__init__", torch_path)
    torch_result = per_query_metrics(q, ql, g, gl, ks=(1, 10, 200), map_at=(10, 200), chunk_size=7)
    for key in numpy_path:
        np.testing.assert_allclose(torch_result[key], numpy_path[key], atol=1e-12)
    np.testing.assert_allclose(precision_recall_curve_mean(q, ql, g, gl, chunk_size=7)[1],
                               numpy_curve, atol=1e-12)
