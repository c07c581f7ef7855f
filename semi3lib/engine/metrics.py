"""Category-level retrieval metrics: mAP@all, mAP@k, P@k and mean PR curves, ranked in chunks.

Definitions (query q, gallery of G items, n_pos of them share q's label; score = dot product
of L2-normalised embeddings, i.e. cosine similarity; higher ranks first):

* **AP (mAP@all)** -- plain, non-interpolated average precision over the whole ranked
  gallery: the mean, over the positives p, of the precision at p's score threshold,

      AP = (1 / n_pos) * sum_p  #{positives with s >= s_p} / #{items with s >= s_p}.

  Tied scores are one threshold, so every item of a tie group counts as ranked at the end of
  its group. This is exactly ``sklearn.metrics.average_precision_score(y_true, y_score)``
  (tested to 1e-6, ties included). It is *not* the interpolated VOC-style AP.
* **P@k** -- hits among the first k ranked items, divided by k (also when G < k).
* **mAP@k** -- AP@k = (1 / h_k) * sum_{i <= k} P(i) rel(i), with h_k the number of positives
  in the first k ranks and P(i) the precision at rank i; AP@k = 0 when h_k = 0. This is
  what SEM-PCYC's ``apsak`` and the SBIR codebases derived from it compute (scikit-learn's
  AP on the top-k list, 0 when it holds no positive). It is *not* normalised by
  min(k, n_pos).
* For the rank-based metrics (P@k, mAP@k) ties are broken by gallery position: equal scores
  rank in gallery order, so the result is deterministic and independent of the chunking.
* A query with **no positive** in the gallery has AP = AP@k = P@k = 0 by default
  (``no_positive="zero"``, scikit-learn's convention; it lowers the mean) or is left out of
  every mean (``no_positive="exclude"``). Either way ``queries_without_positives`` reports
  how many there were.

Instance-level metrics (:func:`instance_metrics`, :func:`own_photo_ranks`): each query has one
right answer, its **own** photo (a gallery column). Its rank is 1 + the number of *other*
gallery items scoring at least as high, so **ties count against the model**: an item with the
own photo's score ranks ahead of it (a constant embedding ranks every own photo last, never
first). acc@K is the share of queries whose own photo ranks K or better; mean and median rank
are over the queries. A query whose own photo is not in the gallery is left out of every mean
and counted (``queries_without_own_photo``).

Ranking runs in chunks of queries: at most ``chunk_size x G`` scores exist at once (sorted in
place), so Sketchy (6,250 x 73,002) or TU-Berlin Extension (2,500 x 204,489) never need the
full score matrix. Instead of an argsort of every row, every metric here needs only two
counts per positive (``#{items >= s_p}`` and ``#{positives >= s_p}``): the values of each
row are sorted (no indices: numpy's AVX-512 float sort on CPU, ``torch.sort`` on GPU) and
the positives' scores are looked up in it with a binary search. Queries are grouped by label
so a block of queries shares one set of positive columns and the rest is dense (B, P) array
arithmetic. The CPU path is numpy only: OpenBLAS's idle threads spin, and mixing them with
torch's OpenMP threads on 2 cores slowed both down (measured 2x).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext as _nullcontext
from typing import Literal

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor
NoPositive = Literal["zero", "exclude"]

INSTANCE_KS = (1, 5, 10)  # acc@K of the instance protocol

__all__ = [
    "INSTANCE_KS",
    "instance_metrics",
    "instance_metrics_from_embeddings",
    "own_photo_ranks",
    "own_photo_ranks_from_embeddings",
    "rank_summary",
    "per_query_ap",
    "per_query_metrics",
    "precision_recall_curve_mean",
    "retrieval_metrics",
]


def retrieval_metrics(
    query_embed: ArrayLike,
    query_labels: ArrayLike | Sequence,
    gallery_embed: ArrayLike,
    gallery_labels: ArrayLike | Sequence,
    *,
    ks: Sequence[int] = (10, 25, 100, 200),
    map_at: Sequence[int] = (200,),
    chunk_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = False,
    no_positive: NoPositive = "zero",
) -> dict[str, float]:
    """Mean retrieval metrics of ``query_embed`` (Q, D) against ``gallery_embed`` (G, D).

    Labels are (Q,) and (G,) arrays or sequences of any comparable type (ints, strings).
    Returns ``{"mAP@all", "mAP@<k>" for k in map_at, "P@<k>" for k in ks, "queries",
    "gallery", "queries_without_positives"}``; definitions in the module docstring.
    ``device``: None runs where ``query_embed`` lives (a CUDA tensor runs on its GPU, anything
    else on CPU); "cuda" moves the work to the GPU. ``no_positive``: "zero" or "exclude".
    """
    per_query = per_query_metrics(
        query_embed, query_labels, gallery_embed, gallery_labels,
        ks=ks, map_at=map_at, chunk_size=chunk_size, device=device, progress=progress,
    )
    keep = _kept_queries(per_query["n_pos"], no_positive)
    out: dict[str, float] = {"mAP@all": _mean(per_query["ap"][keep])}
    for k in map_at:
        out[f"mAP@{k}"] = _mean(per_query[f"mAP@{k}"][keep])
    for k in ks:
        out[f"P@{k}"] = _mean(per_query[f"P@{k}"][keep])
    out["queries"] = float(len(per_query["ap"]))
    out["gallery"] = float(_num_rows(gallery_embed))
    out["queries_without_positives"] = float(np.sum(per_query["n_pos"] == 0))
    return out


def per_query_ap(
    query_embed: ArrayLike,
    query_labels: ArrayLike | Sequence,
    gallery_embed: ArrayLike,
    gallery_labels: ArrayLike | Sequence,
    *,
    chunk_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> np.ndarray:
    """AP of every query over the whole gallery, (Q,) float64 in the input query order
    (0 for a query without positives); e.g. for per-category breakdowns."""
    return per_query_metrics(
        query_embed, query_labels, gallery_embed, gallery_labels,
        ks=(), map_at=(), chunk_size=chunk_size, device=device, progress=progress,
    )["ap"]


def per_query_metrics(
    query_embed: ArrayLike,
    query_labels: ArrayLike | Sequence,
    gallery_embed: ArrayLike,
    gallery_labels: ArrayLike | Sequence,
    *,
    ks: Sequence[int] = (10, 25, 100, 200),
    map_at: Sequence[int] = (200,),
    chunk_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per-query metrics, each (Q,) in the input query order: ``"ap"``, ``"mAP@<k>"``,
    ``"P@<k>"`` (float64) and ``"n_pos"`` (int64, positives in the gallery)."""
    ks, map_at = [int(k) for k in ks], [int(k) for k in map_at]
    if any(k < 1 for k in ks + map_at):
        raise ValueError(f"every k must be >= 1, got ks={ks}, map_at={map_at}")
    rank_ks = sorted(set(ks) | set(map_at))
    state = _Ranking(query_embed, query_labels, gallery_embed, gallery_labels,
                     chunk_size=chunk_size, device=device, kmax=max(rank_ks, default=0))
    q = state.num_queries
    ap = np.zeros(q)
    hits = np.zeros((q, len(rank_ks)))
    ap_at = np.zeros((q, len(rank_ks)))
    for rows, block in state.blocks(progress, desc="ranking"):
        ap[rows] = block.ap()
        if rank_ks:
            hits[rows], ap_at[rows] = block.topk_stats(rank_ks)
    out = {"ap": ap, "n_pos": state.n_pos}
    for j, k in enumerate(rank_ks):
        if k in map_at:
            out[f"mAP@{k}"] = ap_at[:, j]
        if k in ks:
            out[f"P@{k}"] = hits[:, j] / k
    return out


def precision_recall_curve_mean(
    query_embed: ArrayLike,
    query_labels: ArrayLike | Sequence,
    gallery_embed: ArrayLike,
    gallery_labels: ArrayLike | Sequence,
    *,
    num_levels: int = 11,
    chunk_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = False,
    no_positive: NoPositive = "zero",
) -> tuple[np.ndarray, np.ndarray]:
    """Mean interpolated precision at ``num_levels`` evenly spaced recall levels 0..1.

    Per query, interpolated precision at recall r is the highest precision reached at any
    recall >= r (precision and recall taken at each positive's score threshold, ties
    grouped as for AP). Returns ``(recall_levels (L,), mean_precision (L,))``. A query
    without positives contributes zeros ("zero") or is left out ("exclude").
    """
    if num_levels < 2:
        raise ValueError(f"num_levels must be >= 2, got {num_levels}")
    state = _Ranking(query_embed, query_labels, gallery_embed, gallery_labels,
                     chunk_size=chunk_size, device=device, kmax=0)
    curves = np.zeros((state.num_queries, num_levels))
    for rows, block in state.blocks(progress, desc="PR curve"):
        curves[rows] = block.interpolated_precision(num_levels)
    keep = _kept_queries(state.n_pos, no_positive)
    levels = np.arange(num_levels) / (num_levels - 1)
    mean = curves[keep].mean(axis=0) if keep.any() else np.zeros(num_levels)
    return levels, mean


def own_photo_ranks(similarity: ArrayLike, own: ArrayLike | Sequence[int]) -> np.ndarray:
    """The rank (1 = first) of each query's own photo in its row of ``similarity`` (Q, G),
    ``own`` (Q,) its column; ties count against the model (see the module docstring). A
    query with ``own < 0`` (no own photo in the gallery) gets rank 0. Returns (Q,) int64."""
    sim = _to_numpy(similarity)
    own = np.asarray(_to_numpy(own), dtype=np.int64)
    if sim.ndim != 2 or own.shape != (sim.shape[0],):
        raise ValueError(f"similarity must be (Q, G) and own (Q,), got {sim.shape} and {own.shape}")
    if np.any(own >= sim.shape[1]):
        raise ValueError(f"an own-photo column is past the gallery's {sim.shape[1]} items")
    has = own >= 0
    ranks = np.zeros(len(own), dtype=np.int64)
    rows = np.flatnonzero(has)
    own_score = sim[rows, own[rows]][:, None]
    # >= counts the own photo itself once: that is the "1 +"; every tie ranks ahead of it
    ranks[rows] = (sim[rows] >= own_score).sum(axis=1)
    return ranks


def instance_metrics(similarity: ArrayLike, own: ArrayLike | Sequence[int],
                     ks: Sequence[int] = INSTANCE_KS) -> dict[str, float]:
    """acc@K for K in ``ks``, ``mean rank`` and ``median rank`` of the own photos, from a
    similarity matrix (Q, G) (higher ranks first) and each query's own-photo column ``own``
    (Q,; negative: not in the gallery). Also ``queries`` (scored), ``gallery`` and
    ``queries_without_own_photo``. Definitions in the module docstring."""
    ranks = own_photo_ranks(similarity, own)
    return rank_summary(ranks, int(_to_numpy(similarity).shape[1]), ks)


def instance_metrics_from_embeddings(query_embed: ArrayLike, gallery_embed: ArrayLike,
                                     own: ArrayLike | Sequence[int], ks: Sequence[int] = INSTANCE_KS,
                                     chunk_size: int = 1024) -> dict[str, float]:
    """:func:`instance_metrics` of the dot-product scores of ``query_embed`` (Q, D) and
    ``gallery_embed`` (G, D) (cosine similarity for L2-normalised rows), computed in chunks
    of queries so that at most ``chunk_size x G`` scores exist at once."""
    ranks = own_photo_ranks_from_embeddings(query_embed, gallery_embed, own, chunk_size)
    return rank_summary(ranks, int(_to_numpy(gallery_embed).shape[0]), ks)


def own_photo_ranks_from_embeddings(query_embed: ArrayLike, gallery_embed: ArrayLike,
                                    own: ArrayLike | Sequence[int], chunk_size: int = 1024) -> np.ndarray:
    """:func:`own_photo_ranks` of the dot-product scores of ``query_embed`` (Q, D) and
    ``gallery_embed`` (G, D), in chunks of ``chunk_size`` queries. Returns (Q,) int64."""
    q, g = _to_numpy(query_embed).astype(np.float32), _to_numpy(gallery_embed).astype(np.float32)
    own = np.asarray(_to_numpy(own), dtype=np.int64)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1] or own.shape != (q.shape[0],):
        raise ValueError(f"query (Q, D), gallery (G, D) and own (Q,) expected, got {q.shape}, {g.shape}, {own.shape}")
    return np.concatenate([own_photo_ranks(q[i:i + chunk_size] @ g.T, own[i:i + chunk_size])
                           for i in range(0, len(q), chunk_size)] or [np.zeros(0, dtype=np.int64)])


def rank_summary(ranks: np.ndarray, gallery: int, ks: Sequence[int]) -> dict[str, float]:
    """acc@K, mean and median rank over the queries with an own photo (rank > 0)."""
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {list(ks)}")
    scored = ranks[ranks > 0]
    out = {f"acc@{int(k)}": _mean((scored <= int(k)).astype(np.float64)) for k in ks}
    out["mean rank"] = float(scored.mean()) if len(scored) else float("nan")
    out["median rank"] = float(np.median(scored)) if len(scored) else float("nan")
    out["queries"] = float(len(scored))
    out["gallery"] = float(gallery)
    out["queries_without_own_photo"] = float(np.sum(ranks == 0))
    return out


# --------------------------------------------------------------------------- internals


def _kept_queries(n_pos: np.ndarray, no_positive: NoPositive) -> np.ndarray:
    if no_positive == "zero":
        return np.ones(len(n_pos), dtype=bool)
    if no_positive == "exclude":
        return n_pos > 0
    raise ValueError(f"no_positive must be 'zero' or 'exclude', got {no_positive!r}")


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def _num_rows(x: ArrayLike) -> int:
    return int(x.shape[0])


def _to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _label_codes(query_labels, gallery_labels, q: int, g: int) -> tuple[np.ndarray, np.ndarray]:
    """Map labels of any type onto shared integer codes, (Q,) and (G,)."""
    ql, gl = _to_numpy(query_labels), _to_numpy(gallery_labels)
    if ql.shape != (q,) or gl.shape != (g,):
        raise ValueError(f"labels must be (Q,)=({q},) and (G,)=({g},), got {ql.shape} and {gl.shape}")
    _, codes = np.unique(np.concatenate([ql, gl]), return_inverse=True)
    return codes[:q].astype(np.int64), codes[q:].astype(np.int64)


def _group_start(sorted_rows: np.ndarray) -> np.ndarray:
    """Index of the first element of each element's run of equal values, (B, P) -> (B, P)."""
    p = sorted_rows.shape[1]
    start = np.zeros(sorted_rows.shape, dtype=np.int64)
    if p > 1:
        new_run = sorted_rows[:, 1:] != sorted_rows[:, :-1]
        start[:, 1:] = np.where(new_run, np.arange(1, p), 0)
    return np.maximum.accumulate(start, axis=1)


class _Ranking:
    """Validated inputs and the chunked scoring/sorting; :meth:`blocks` yields the counts."""

    def __init__(self, query_embed, query_labels, gallery_embed, gallery_labels, *,
                 chunk_size: int, device, kmax: int) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if query_embed.ndim != 2 or gallery_embed.ndim != 2 or query_embed.shape[1] != gallery_embed.shape[1]:
            raise ValueError(
                f"embeddings must be (Q, D) and (G, D), got {tuple(query_embed.shape)} and "
                f"{tuple(gallery_embed.shape)}")
        if device is None:
            device = query_embed.device if isinstance(query_embed, torch.Tensor) else "cpu"
        self.device = torch.device(device)
        self.on_cpu = self.device.type == "cpu"
        # float64 in (both), float64 scores: exact comparisons against float64 references.
        both64 = all(x.dtype in (torch.float64, np.float64) for x in (query_embed, gallery_embed))
        self.dtype = np.float64 if both64 else np.float32
        self.query = self._prepare(query_embed)
        self.gallery = self._prepare(gallery_embed)
        self.num_queries, self.num_gallery = self.query.shape[0], self.gallery.shape[0]
        self.chunk_size = min(chunk_size, max(self.num_queries, 1))
        self.kmax = min(kmax, self.num_gallery)
        q_codes, g_codes = _label_codes(query_labels, gallery_labels, self.num_queries, self.num_gallery)
        num_codes = int(max(q_codes.max(initial=-1), g_codes.max(initial=-1))) + 1
        g_order = np.argsort(g_codes, kind="stable")
        bounds = np.searchsorted(g_codes[g_order], np.arange(num_codes + 1))
        self.pos_cols = [g_order[bounds[c]:bounds[c + 1]] for c in range(num_codes)]
        self.n_pos = np.diff(bounds)[q_codes].astype(np.int64)
        # Queries are processed grouped by label so each block shares its positive columns.
        self.q_order = np.argsort(q_codes, kind="stable")
        self.q_codes_sorted = q_codes[self.q_order]
        if self.on_cpu:
            self._pool = ThreadPoolExecutor(max(1, min(2, os.cpu_count() or 1)))
        else:
            self._gallery_t = torch.as_tensor(self.gallery, device=self.device)

    def _prepare(self, x: ArrayLike) -> np.ndarray:
        arr = np.ascontiguousarray(_to_numpy(x), dtype=self.dtype)
        if not np.isfinite(arr).all():
            raise ValueError("embeddings contain NaN or inf")
        return arr

    def halves(self, n: int) -> list[slice]:
        """The two row ranges of a chunk of ``n`` queries that the two CPU threads score."""
        half = (n + 1) // 2
        return [r for r in (slice(0, half), slice(half, n)) if r.stop > r.start]

    def chunk_scores(self, chunk: np.ndarray, out: np.ndarray | None = None):
        """Scores (B, G) of the queries ``chunk``: numpy (into ``out``) on CPU, torch on GPU.

        Deterministic: the same chunk always gives the same bits (tie re-ranking relies on
        it, and checks it). On CPU each half is one single-threaded BLAS call on its thread.
        """
        if not self.on_cpu:
            return torch.as_tensor(self.query[chunk], device=self.device) @ self._gallery_t.T
        out = np.empty((len(chunk), self.num_gallery), self.dtype) if out is None else out
        list(self._pool.map(lambda r: self._score_rows(chunk[r], out[r]), self.halves(len(chunk))))
        return out

    def _score_rows(self, queries: np.ndarray, out: np.ndarray) -> None:
        np.matmul(self.query[queries], self.gallery.T, out=out)

    def blocks(self, progress: bool, desc: str):
        """Yield ``(query_rows, _Block)`` for each label group within each chunk."""
        from threadpoolctl import threadpool_limits
        from tqdm.auto import tqdm

        # One score buffer for all chunks: a fresh 75 MB block per chunk costs page faults.
        buf = np.empty((self.chunk_size, self.num_gallery), self.dtype) if self.on_cpu else None
        starts = range(0, self.num_queries, self.chunk_size)
        # On CPU, each of two threads scores, sorts and looks up its half of a chunk with a
        # single-threaded BLAS: a multi-threaded OpenBLAS leaves its worker spinning after
        # every product, which on 2 cores starves the sort that follows.
        with threadpool_limits(limits=1, user_api="blas") if self.on_cpu else _nullcontext():
            for start in tqdm(starts, desc=desc, disable=not progress, unit="chunk"):
                chunk = self.q_order[start:start + self.chunk_size]
                codes = self.q_codes_sorted[start:start + self.chunk_size]
                groups = np.split(np.arange(len(chunk)), np.flatnonzero(np.diff(codes)) + 1)
                if self.on_cpu:
                    counted = self._count_cpu(chunk, codes, groups, buf[:len(chunk)])
                else:
                    counted = self._count_gpu(chunk, codes, groups)
                for offsets, (pos, n_ge_all, tied, top_value) in zip(groups, counted):
                    yield chunk[offsets], _Block(self, chunk, offsets, int(codes[offsets[0]]),
                                                 pos, n_ge_all, tied, top_value)

    def _count_cpu(self, chunk, codes, groups, buf: np.ndarray) -> list[tuple]:
        """Per block: sorted positive scores, #{items >= each}, tie flags, kmax-th score."""
        g = self.num_gallery
        cols = [self.pos_cols[codes[o[0]]] for o in groups]
        pos = [np.empty((len(o), len(c)), self.dtype) for o, c in zip(groups, cols)]
        n_ge_all = [np.empty(p.shape, np.int64) for p in pos]
        tied = [np.empty(p.shape, bool) for p in pos]
        block_of_row = np.repeat(np.arange(len(groups)), [len(o) for o in groups])

        def half(r: slice) -> None:
            s = buf[r]
            self._score_rows(chunk[r], s)
            rows = np.arange(len(chunk))[r]
            parts = [(b, rows[block_of_row[r] == b]) for b in np.unique(block_of_row[r])]
            # The positives' scores are read before the rows are sorted in place.
            for b, rr in parts:
                # rr is a contiguous run of rows: slice (a view) before gathering columns.
                pos[b][rr - groups[b][0]] = np.sort(buf[rr[0]:rr[-1] + 1][:, cols[b]], axis=1)
            # numpy's float sort is vectorised (AVX-512; ~3x faster than torch.sort here).
            s.sort(axis=1)
            for b, rr in parts:
                for i in rr:
                    j = i - groups[b][0]
                    # side="left" counts the items strictly below s_p, so G - idx counts the
                    # items >= s_p: a tie group counts as ranked at its end, as in sklearn.
                    idx = np.searchsorted(buf[i], pos[b][j])
                    n_ge_all[b][j] = g - idx
                    tied[b][j] = (buf[i][np.minimum(idx + 1, g - 1)] == pos[b][j]) & (idx + 1 < g)

        # Both threads release the GIL in matmul, sort and searchsorted.
        list(self._pool.map(half, self.halves(len(chunk))))
        return [(pos[b], n_ge_all[b], tied[b],
                 buf[o, g - self.kmax] if self.kmax else None) for b, o in enumerate(groups)]

    def _count_gpu(self, chunk, codes, groups) -> list[tuple]:
        """As :meth:`_count_cpu`, with torch on the device."""
        s = self.chunk_scores(chunk)
        pos = [torch.sort(s[o[0]:o[-1] + 1].index_select(
            1, torch.as_tensor(self.pos_cols[codes[o[0]]], device=self.device)), dim=1).values
            for o in groups]
        s = torch.sort(s, dim=1).values
        g = self.num_gallery
        out = []
        for o, p in zip(groups, pos):
            rows = s[o[0]:o[-1] + 1]
            idx = torch.searchsorted(rows, p)
            tied = (torch.gather(rows, 1, (idx + 1).clamp(max=g - 1)) == p) & (idx + 1 < g)
            top = rows[:, g - self.kmax].cpu().numpy() if self.kmax else None
            out.append((p.cpu().numpy(), (g - idx).cpu().numpy(), tied.cpu().numpy(), top))
        return out


class _Block:
    """Queries of one label within a chunk, reduced to per-positive counts.

    ``pos`` (B, P): the positives' scores, ascending; ``n_ge_all`` (B, P): items scoring
    >= each positive; ``n_ge_pos`` (B, P): positives scoring >= it; ``tied`` (B, P): the
    positive's score equals another item's; ``top_value`` (B,): the kmax-th highest score.
    """

    def __init__(self, ranking: _Ranking, chunk: np.ndarray, offsets: np.ndarray, code: int,
                 pos: np.ndarray, n_ge_all: np.ndarray, tied: np.ndarray,
                 top_value: np.ndarray | None) -> None:
        self.ranking = ranking
        self.chunk, self.offsets, self.code = chunk, offsets, code
        self.rows = chunk[offsets]
        self.pos, self.n_ge_all, self.tied, self.top_value = pos, n_ge_all, tied, top_value
        self.n_pos = pos.shape[1]
        self.n_ge_pos = self.n_pos - _group_start(pos)

    def ap(self) -> np.ndarray:
        """(B,) plain AP over the whole gallery."""
        if self.n_pos == 0:
            return np.zeros(len(self.rows))
        return (self.n_ge_pos / self.n_ge_all).mean(axis=1)

    def topk_stats(self, ks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(B, K) hits in the first k and AP@k, for each k in ``ks``."""
        b = len(self.rows)
        if self.n_pos == 0:
            return np.zeros((b, len(ks))), np.zeros((b, len(ks)))
        # Without ties, a positive's rank is n_ge_all. A tie matters to rank metrics only when
        # a positive's score is shared and reaches the top kmax; those rows are re-ranked.
        # Only the kmax highest-scoring positives (the last columns) can rank in the top kmax.
        top_pos = slice(max(0, self.n_pos - self.ranking.kmax), None)
        ranks = self.n_ge_all[:, top_pos]
        prec_at_hit = self.n_ge_pos[:, top_pos] / ranks
        in_top = ranks[:, None, :] <= np.asarray(ks)[None, :, None]  # (B, K, min(P, kmax))
        hits = in_top.sum(axis=2).astype(np.float64)
        ap_k = (prec_at_hit[:, None, :] * in_top).sum(axis=2) / np.maximum(hits, 1)
        rerank = np.flatnonzero((self.tied & (self.pos >= self.top_value[:, None])).any(axis=1))
        if len(rerank):
            self._rerank(rerank, ks, hits, ap_k)
        return hits, ap_k

    def _rerank(self, rows: np.ndarray, ks: list[int], hits: np.ndarray, ap_k: np.ndarray) -> None:
        """Rank metrics for ``rows`` of this block, ties broken by gallery position.

        The sorted rows no longer say which item is where, so the whole chunk is scored again
        with the same call (same inputs and shapes, hence the same bits; checked). One extra
        matrix product, only for chunks where a positive ties near the top.
        """
        r = self.ranking
        g, kmax = r.num_gallery, r.kmax
        buf = np.empty((len(self.chunk), g), r.dtype) if r.on_cpu else None
        s = _to_numpy(r.chunk_scores(self.chunk, out=buf))[self.offsets[rows]]
        positive = np.zeros(g, dtype=bool)
        positive[r.pos_cols[self.code]] = True
        if not np.array_equal(np.sort(s[:, positive], axis=1), self.pos[rows]):
            raise RuntimeError("re-scoring a chunk gave different values (non-deterministic "
                               "matrix product); cannot break ties by gallery position")
        last = np.minimum(np.asarray(ks), kmax) - 1
        for i, row in zip(rows, s):
            cand = np.flatnonzero(row >= self.top_value[i])
            order = cand[np.lexsort((cand, -row[cand]))][:kmax]
            rel = positive[order]
            cum = np.cumsum(rel)
            cum_prec = np.cumsum(np.where(rel, cum / np.arange(1, kmax + 1), 0.0))
            hits[i] = cum[last]
            ap_k[i] = cum_prec[last] / np.maximum(cum[last], 1)

    def interpolated_precision(self, num_levels: int) -> np.ndarray:
        """(B, L) interpolated precision at recall levels i / (L - 1)."""
        if self.n_pos == 0:
            return np.zeros((len(self.rows), num_levels))
        prec = self.n_ge_pos / self.n_ge_all  # (B, P), positives in ascending score order
        # Interpolated precision at a positive = the best precision at this or any higher
        # recall, i.e. at this or any lower score: a running max from the low-score end.
        best = np.maximum.accumulate(prec, axis=1)
        # Level i is reached by the positives with n_ge_pos / P >= i / (L - 1) (compared in
        # integers, so recall 0.3 is not lost to rounding); n_ge_pos does not increase along
        # a row, so they form a prefix, and the level's value is ``best`` at its end.
        need = np.arange(num_levels) * self.n_pos
        reached = (self.n_ge_pos * (num_levels - 1))[:, :, None] >= need[None, None, :]
        last = reached.sum(axis=1) - 1  # (B, L); >= 0 as the lowest positive has recall 1
        return np.take_along_axis(best, last, axis=1)
