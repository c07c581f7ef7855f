"""Retrieval index: photo embeddings + paths + the identity of the model that made them.

An index is one ``.npz`` file (no pickle): the (N, D) float32 embeddings, and a JSON
metadata record (format name and version, paths, optional labels, model identity). It is
written atomically (temporary file in the same folder, fsync, ``os.replace``), so a crash
never leaves a truncated index behind.

Search is exact brute force by default (one matrix-vector product and a partial sort,
ties broken by gallery position). For large galleries FAISS can be used instead:
``"faiss-flat"`` (exact, FAISS's own kernels), ``"faiss-hnsw"`` or ``"faiss-ivf"``
(approximate). A FAISS structure is built on first use and kept on the index object.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

FORMAT_NAME = "semi3-retrieval-index"
FORMAT_VERSION = 1

Backend = Literal["exact", "faiss-flat", "faiss-hnsw", "faiss-ivf"]
BACKENDS: tuple[str, ...] = ("exact", "faiss-flat", "faiss-hnsw", "faiss-ivf")

# Approximate-index defaults (see benchmarks/bench_search.py for their recall and latency);
# raise ef_search / nprobe for more recall, lower them for speed.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 64
IVF_NPROBE = 32
IVF_TRAIN_POINTS_PER_LIST = 64

__all__ = [
    "BACKENDS",
    "IndexCompatibilityError",
    "IndexFormatError",
    "RetrievalIndex",
    "build_faiss_index",
    "check_compatible",
    "load_index",
    "prepare",
    "save_index",
    "search",
    "search_arrays",
]


class IndexFormatError(ValueError):
    """A file is not a readable retrieval index (corrupt, truncated, other format/version)."""


class IndexCompatibilityError(ValueError):
    """An index was built by a different model than the one embedding the query."""


@dataclass
class RetrievalIndex:
    """A searchable gallery.

    embeddings: (N, D) float32, L2-normalised (score = dot product = cosine similarity).
    paths: N strings, the photo of each row.
    model_identity: JSON-serialisable description of the embedding model (e.g. backbone,
        embed_dim, config hash, checkpoint sha256); compared by :func:`check_compatible`.
    labels: optional N labels (e.g. category names), JSON-serialisable.
    """

    embeddings: np.ndarray
    paths: list[str]
    model_identity: dict[str, Any]
    labels: list | None = None
    _faiss: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        emb = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        if emb.ndim != 2:
            raise ValueError(f"embeddings must be (N, D), got shape {emb.shape}")
        self.embeddings = emb
        self.paths = [str(p) for p in self.paths]
        if len(self.paths) != len(emb):
            raise ValueError(f"{len(emb)} embeddings but {len(self.paths)} paths")
        if self.labels is not None:
            # numpy scalars are not JSON-serialisable; tolist() gives Python ints/strs.
            self.labels = np.asarray(self.labels).tolist()
            if len(self.labels) != len(emb):
                raise ValueError(f"{len(emb)} embeddings but {len(self.labels)} labels")
        self.model_identity = dict(self.model_identity)

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]


def save_index(index: RetrievalIndex, path: str | os.PathLike) -> Path:
    """Write ``index`` to ``path`` (one .npz file) atomically; returns the path."""
    path = Path(path)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "count": len(index),
        "dim": index.dim,
        "model_identity": index.model_identity,
        "paths": index.paths,
        "labels": index.labels,
    }
    # Serialise first: a non-JSON model identity fails before any file is touched.
    meta_bytes = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    from semi3lib.io import atomic_write

    return atomic_write(path, lambda f: np.savez(f, embeddings=index.embeddings, meta=meta_bytes))


def load_index(path: str | os.PathLike) -> RetrievalIndex:
    """Read an index written by :func:`save_index`.

    Raises FileNotFoundError for a missing file and :class:`IndexFormatError` for a file that
    is corrupt, truncated, not an index, or of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"retrieval index {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files or "embeddings" not in data.files:
                raise IndexFormatError(f"{path} is an .npz file but not a retrieval index "
                                       f"(arrays: {data.files})")
            meta = json.loads(data["meta"].tobytes().decode("utf-8"))
            embeddings = data["embeddings"]
    except IndexFormatError:
        raise
    except Exception as err:  # zipfile, zlib, json, numpy errors all mean "unreadable"
        raise IndexFormatError(f"{path} is not a readable retrieval index (corrupt or "
                               f"truncated?): {type(err).__name__}: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not a {FORMAT_NAME} file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(f"{path} has index format version {meta.get('format_version')}; "
                               f"this semi3lib reads version {FORMAT_VERSION}: rebuild the index")
    if embeddings.shape != (meta["count"], meta["dim"]):
        raise IndexFormatError(f"{path}: embeddings {embeddings.shape} do not match the "
                               f"metadata ({meta['count']}, {meta['dim']})")
    return RetrievalIndex(embeddings=embeddings, paths=meta["paths"],
                          model_identity=meta["model_identity"], labels=meta["labels"])


def check_compatible(index: RetrievalIndex, model_identity: dict[str, Any], *,
                     strict: bool = False) -> None:
    """Raise :class:`IndexCompatibilityError` when ``index`` was built by another model.

    Every key present in both identities must be equal, and an ``embed_dim`` must match the
    index's dimension. With ``strict``, both identities must also have the same keys (by
    default a key only one side records, e.g. one added in a later version, is not compared).
    """
    built = index.model_identity
    diffs = [f"{k}: index {built[k]!r} vs model {model_identity[k]!r}"
             for k in sorted(set(built) & set(model_identity)) if built[k] != model_identity[k]]
    if "embed_dim" in model_identity and model_identity["embed_dim"] != index.dim:
        diffs.append(f"embed_dim: index embeddings have {index.dim} dimensions vs model "
                     f"{model_identity['embed_dim']!r}")
    if strict and set(built) != set(model_identity):
        diffs.append(f"keys: index {sorted(built)} vs model {sorted(model_identity)}")
    if diffs:
        raise IndexCompatibilityError(
            "the index was built by a different model; rebuild it with `semi3 index` for this "
            "checkpoint. Differences: " + "; ".join(diffs))


def build_faiss_index(embeddings: np.ndarray, kind: str = "flat", *, hnsw_m: int = HNSW_M,
                      ef_construction: int = HNSW_EF_CONSTRUCTION,
                      ef_search: int = HNSW_EF_SEARCH, nlist: int | None = None,
                      nprobe: int = IVF_NPROBE, seed: int = 0):
    """A FAISS inner-product index over ``embeddings`` (N, D) float32.

    kind: "flat" (exact), "hnsw" (graph, M=``hnsw_m``) or "ivf" (inverted lists: ``nlist``
    k-means cells, default sqrt(N), searching ``nprobe`` of them).
    """
    import faiss

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, d = x.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    elif kind == "ivf":
        # FAISS wants >= 39 training points per list; 64 per list keeps k-means to seconds
        # at 10^6 on 2 cores (a full-data k-means would take minutes for little recall).
        nlist = nlist or max(1, min(n // 39, int(np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = x[np.sort(rng.choice(n, size=min(n, IVF_TRAIN_POINTS_PER_LIST * nlist),
                                      replace=False))]
        index.cp.seed = seed
        index.train(sample)
        index.nprobe = min(nprobe, nlist)
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}; use flat, hnsw or ivf")
    index.add(x)
    return index


def search_arrays(gallery: np.ndarray, queries: np.ndarray, k: int = 10, *,
                  backend: Backend = "exact", faiss_index=None,
                  max_block: int = 1 << 25) -> tuple[np.ndarray, np.ndarray]:
    """Top-k gallery rows for each query: ``(scores (Q, k'), indices (Q, k'))``, best first,
    k' = min(k, N).

    gallery (N, D) float32, queries (Q, D). "exact" computes all scores (in blocks of at most
    ``max_block`` scores) and breaks ties by gallery position; FAISS backends need
    ``faiss_index`` (see :func:`build_faiss_index`).
    """
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n, d = gallery.shape
    if queries.shape[1] != d:
        raise ValueError(f"query dimension {queries.shape[1]} does not match the index's {d}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, n)
    if backend != "exact":
        if faiss_index is None:
            raise ValueError(f"backend {backend!r} needs a faiss_index")
        scores, idx = faiss_index.search(queries, k)
        return scores, idx
    out_scores = np.empty((len(queries), k), dtype=np.float32)
    out_idx = np.empty((len(queries), k), dtype=np.int64)
    step = max(1, max_block // max(n, 1))
    for start in range(0, len(queries), step):
        block = gallery @ queries[start:start + step].T  # (N, B): one pass over the gallery
        for j in range(block.shape[1]):
            s = block[:, j]
            # argpartition finds the k-th best score; everything >= it (k items, more with
            # ties) is then ordered by (score desc, gallery position asc).
            kth = s[np.argpartition(s, n - k)[n - k]]
            cand = np.flatnonzero(s >= kth)
            top = cand[np.lexsort((cand, -s[cand]))][:k]
            out_scores[start + j], out_idx[start + j] = s[top], top
    return out_scores, out_idx


def search(index: RetrievalIndex, query_embed: np.ndarray, k: int = 10, *,
           backend: Backend = "exact", **faiss_params) -> list:
    """Top-k photos for a query embedding.

    query_embed (D,) returns ``[(path, score), ...]`` (best first); (Q, D) returns one such
    list per query. Scores are dot products (cosine similarity for normalised embeddings).
    A FAISS backend builds its structure on first use (``faiss_params`` go to
    :func:`build_faiss_index`) and caches it on ``index``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown search backend {backend!r}; use one of {BACKENDS}")
    q = np.asarray(query_embed, dtype=np.float32)
    single = q.ndim == 1
    if q.ndim not in (1, 2):
        raise ValueError(f"query_embed must be (D,) or (Q, D), got shape {q.shape}")
    faiss_index = prepare(index, backend, **faiss_params) if backend != "exact" else None
    scores, idx = search_arrays(index.embeddings, q, k, backend=backend, faiss_index=faiss_index)
    results = [[(index.paths[i], float(sc)) for i, sc in zip(row_i, row_s) if i >= 0]
               for row_i, row_s in zip(idx, scores)]
    return results[0] if single else results


def prepare(index: RetrievalIndex, backend: Backend, **faiss_params):
    """Build (once) and return the FAISS structure ``backend`` needs; None for "exact"."""
    if backend == "exact":
        return None
    if backend not in index._faiss:
        index._faiss[backend] = build_faiss_index(index.embeddings, backend.removeprefix("faiss-"),
                                                  **faiss_params)
    return index._faiss[backend]
