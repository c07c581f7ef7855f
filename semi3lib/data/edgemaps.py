"""Edgemaps of natural photos, the third domain of Semi3-Net, and their on-disk cache.

The paper does not say which edge detector it used, so three classical, weight-free ones are
offered (*[assumed]*, chosen by ``data.edge_method``): Canny with median-based automatic
thresholds, XDoG (Winnemoeller et al. 2012) and Sobel gradient magnitude. Every method returns
*sketch polarity*: dark strokes (0) on white (255), the same size as the photo, so edgemaps
and sketches can share the bottom layers of the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import cv2
import numpy as np

from semi3lib.io import atomic_write

EDGE_METHODS = ("canny", "xdog", "sobel")
# Bump when an algorithm changes, so caches written by older code are not reused.
EDGE_ALGORITHM_VERSION = 1
# Bump when the cache's file format changes (2: grey maps as .npy instead of PNG).
EDGE_CACHE_FORMAT_VERSION = 2

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    # sigma: width of the threshold band around the median intensity (Rosebrock's auto-Canny);
    # blur: Gaussian pre-smoothing sigma (0 = none); min_low: floor for the low threshold so a
    # near-black photo does not turn sensor noise into edges; dilate: stroke thickening (px).
    "canny": {"sigma": 0.33, "blur": 1.0, "min_low": 10, "dilate": 0},
    # Winnemoeller's XDoG: D = G(sigma) - tau * G(k * sigma); white where D >= eps, else
    # 1 + tanh(phi * (D - eps)). Intensities in [0, 1].
    "xdog": {"sigma": 0.8, "k": 1.6, "tau": 0.98, "eps": -0.005, "phi": 200.0},
    # Gradient magnitude of the blurred grey image, divided by its `percentile`-th percentile;
    # values under `floor` (fraction of that scale) are set to background to clean textures.
    "sobel": {"blur": 1.0, "percentile": 99.0, "floor": 0.15},
}


def resolve_params(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full parameter set of ``method`` (defaults updated with ``params``); unknown method
    or parameter names are a ValueError that lists the valid ones."""
    if method not in EDGE_METHODS:
        raise ValueError(f"unknown edge method {method!r}; valid methods: {', '.join(EDGE_METHODS)}")
    defaults = DEFAULT_PARAMS[method]
    unknown = sorted(set(params or {}) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown parameter {unknown[0]!r} for edge method {method!r}; valid: {', '.join(defaults)}"
        )
    out = dict(defaults)
    for key, value in (params or {}).items():
        out[key] = type(defaults[key])(value)  # "0.5" from the CLI and 0.5 give one cache key
    return out


def _grey(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"edgemaps need a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"edgemaps need an (H, W, 3) RGB or (H, W) grey image, got shape {image.shape}")


def _blur(grey: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(grey, (0, 0), sigma) if sigma > 0 else grey


def _canny(grey: np.ndarray, sigma: float, blur: float, min_low: int, dilate: int) -> np.ndarray:
    smooth = _blur(grey, blur)
    median = float(np.median(smooth))
    low = max(float(min_low), (1.0 - sigma) * median)
    high = max(low * 2.0, min(255.0, (1.0 + sigma) * median))
    edges = cv2.Canny(smooth, low, high, L2gradient=True)
    if dilate > 0:
        edges = cv2.dilate(edges, np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8))
    return 255 - edges


def _xdog(grey: np.ndarray, sigma: float, k: float, tau: float, eps: float, phi: float) -> np.ndarray:
    img = grey.astype(np.float32) / 255.0
    g1 = cv2.GaussianBlur(img, (0, 0), sigma)
    g2 = cv2.GaussianBlur(img, (0, 0), sigma * k)
    d = g1 - tau * g2
    out = np.where(d >= eps, 1.0, 1.0 + np.tanh(phi * (d - eps)))
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _sobel(grey: np.ndarray, blur: float, percentile: float, floor: float) -> np.ndarray:
    smooth = _blur(grey, blur).astype(np.float32)
    mag = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3))
    scale = float(np.percentile(mag, percentile))
    if scale <= 1e-6:  # a flat image has no edges, not division noise
        return np.full(grey.shape, 255, np.uint8)
    strength = np.clip(mag / scale, 0.0, 1.0)
    strength[strength < floor] = 0.0
    return np.rint(255.0 * (1.0 - strength)).astype(np.uint8)


_METHODS: dict[str, Callable[..., np.ndarray]] = {"canny": _canny, "xdog": _xdog, "sobel": _sobel}


def compute_edgemap(rgb: np.ndarray, method: str = "canny", **params: Any) -> np.ndarray:
    """Edgemap of a photo in sketch polarity.

    rgb: (H, W, 3) uint8 RGB (a (H, W) grey image is accepted too).
    Returns (H, W) uint8: 0 = stroke, 255 = background.
    """
    full = resolve_params(method, params)
    return _METHODS[method](_grey(np.asarray(rgb)), **full)


def params_key(method: str, params: dict[str, Any] | None = None) -> str:
    """Short hash of (algorithm and cache format versions, method, full parameters): the
    cache subfolder."""
    payload = json.dumps(
        {"v": EDGE_ALGORITHM_VERSION, "format": EDGE_CACHE_FORMAT_VERSION, "method": method,
         "params": resolve_params(method, params)},
        sort_keys=True,
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


# A binary map (Canny) as 1-bit PNG without compression: 8 KB at 256 px, decoded in ~0.055 ms
# (zlib level 1 would make it 3 KB but take ~0.09 ms).
_BILEVEL_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 0, cv2.IMWRITE_PNG_BILEVEL, 1]


def _write_entry(entry: Path, edge: np.ndarray) -> None:
    """Store ``edge`` at ``entry`` + ``.png`` (binary map, 1-bit) or + ``.npy`` (grey map).

    Reading is the point of the cache: decoding a grey map (XDoG, Sobel) from even a lightly
    compressed PNG costs ~0.25 ms, a quarter of computing it from the photo (JPEG decode
    included), which held the cached pass to 5-8x faster; stored raw (64 KB at 256 px) it is
    read in ~0.03 ms. Written by :func:`semi3lib.io.atomic_write` (a temporary file renamed
    into place), so DataLoader workers sharing a cache never see half-written files; without
    fsync, since a lost entry is only computed again.
    """
    binary = bool(np.all((edge == 0) | (edge == 255)))
    if binary:
        encoded, png = cv2.imencode(".png", edge, _BILEVEL_PNG)
        if not encoded:  # not cached; the edgemap itself is still returned
            return
        atomic_write(entry.with_suffix(".png"), lambda handle: handle.write(png.tobytes()), durable=False)
    else:
        atomic_write(entry.with_suffix(".npy"),
                     lambda handle: np.save(handle, np.ascontiguousarray(edge), allow_pickle=False), durable=False)


# The header np.save writes for a C-ordered (H, W) uint8 array, version 1.0.
_NPY_UINT8_2D = re.compile(r"\{'descr': '\|u1', 'fortran_order': False, 'shape': \((\d+), (\d+)\), \} *\n")


def _read_uint8_npy(path: Path) -> np.ndarray | None:
    """An (H, W) uint8 ``.npy`` file, or None if absent, truncated or of another kind.

    Reads the file in one call and parses the fixed header itself: ``np.load`` spends ~0.15 ms
    per file on its general header parsing, five times the read, which capped the cached pass
    of grey edgemaps near 10x the first pass."""
    try:
        data = bytearray(path.read_bytes())
    except OSError:
        return None
    if data[:8] != b"\x93NUMPY\x01\x00":
        return None
    body = 10 + int.from_bytes(data[8:10], "little")
    match = _NPY_UINT8_2D.fullmatch(data[10:body].decode("latin1"))
    if match is None:
        return None
    height, width = int(match[1]), int(match[2])
    if len(data) - body != height * width:  # truncated by a crash outside the atomic rename
        return None
    return np.frombuffer(data, np.uint8, offset=body).reshape(height, width)


def _read_entry(entry: Path) -> np.ndarray | None:
    """The (H, W) uint8 map stored at ``entry`` (either suffix), or None if absent or unreadable."""
    png = entry.with_suffix(".png")
    if png.is_file():
        return cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    return _read_uint8_npy(entry.with_suffix(".npy"))


class EdgeCache:
    """Edgemaps cached on disk, keyed by image, method and parameters.

    Layout: ``<cache_dir>/<method>-<params hash>/<aa>/<image key>.png|.npy`` with a
    ``params.json`` beside: binary maps as 1-bit PNG, grey maps as raw uint8 ``.npy`` (see
    :func:`_write_entry`). The image key hashes the absolute path, size and modification time,
    so an edited photo is recomputed without reading its bytes. Writes go through a temporary
    file and an atomic rename, so DataLoader workers sharing a cache never see half-written files.
    """

    def __init__(self, cache_dir: str | os.PathLike, method: str = "canny",
                 params: dict[str, Any] | None = None) -> None:
        self.method = method
        self.params = resolve_params(method, params)
        self.cache_dir = Path(cache_dir)
        self.dir = self.cache_dir / f"{method}-{params_key(method, self.params)}"
        self.hits = 0
        self.misses = 0

    def _ensure_dir(self) -> None:
        if not (self.dir / "params.json").is_file():
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "params.json").write_text(json.dumps(
                {"method": self.method, "params": self.params, "version": EDGE_ALGORITHM_VERSION,
                 "format": EDGE_CACHE_FORMAT_VERSION}, indent=1))

    def path_for(self, photo_path: str | os.PathLike) -> Path:
        """Where the edgemap of ``photo_path`` is (or would be) cached, without the suffix
        (``.png`` for a binary map, ``.npy`` for a grey one)."""
        photo_path = os.path.abspath(photo_path)
        st = os.stat(photo_path)
        key = hashlib.sha1(f"{photo_path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
        return self.dir / key[:2] / key

    def get(self, photo_path: str | os.PathLike) -> np.ndarray:
        """(H, W) uint8 edgemap of the photo, from the cache or computed and stored.
        Raises :class:`~semi3lib.data.images.UnreadableImageError` for an unreadable photo."""
        from semi3lib.data.images import UnreadableImageError, load_image

        try:
            target = self.path_for(photo_path)
        except OSError as err:
            raise UnreadableImageError(photo_path, f"{type(err).__name__}: {err}") from err
        edge = _read_entry(target)
        if edge is not None:
            self.hits += 1
            return edge
        self.misses += 1
        edge = compute_edgemap(np.asarray(load_image(photo_path, "RGB")), self.method, **self.params)
        self._ensure_dir()
        _write_entry(target, edge)
        return edge

    def precompute(self, photo_paths: Iterable[str | os.PathLike], progress: bool = True) -> dict[str, Any]:
        """Fill the cache for many photos (tqdm bar); unreadable photos are counted, not fatal.
        Returns counts (``computed``, ``cached``, ``unreadable``), the unreadable paths and
        ``seconds``."""
        from tqdm.auto import tqdm

        from semi3lib.data.images import UnreadableImageError

        paths = list(photo_paths)
        hits0, misses0 = self.hits, self.misses
        unreadable: list[str] = []
        start = time.perf_counter()
        for p in tqdm(paths, desc=f"edgemaps ({self.method})", unit="img", disable=not progress):
            try:
                self.get(p)
            except UnreadableImageError as err:
                unreadable.append(str(err.path))
        return {
            "method": self.method,
            "params": self.params,
            "photos": len(paths),
            "computed": self.misses - misses0 - len(unreadable),
            "cached": self.hits - hits0,
            "unreadable": len(unreadable),
            "unreadable_files": unreadable,
            "seconds": round(time.perf_counter() - start, 3),
            "cache_dir": str(self.dir),
        }


def edgemap_speed(photo_paths: Iterable[str | os.PathLike], methods: Iterable[str]) -> dict[str, float]:
    """Seconds per photo of each edge method, on one OpenCV thread, decoding excluded."""
    from semi3lib.data.images import load_image

    photos = [np.asarray(load_image(p, "RGB")) for p in photo_paths]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        out = {}
        for method in methods:
            compute_edgemap(photos[0], method)  # warm-up
            t0 = time.perf_counter()
            for photo in photos:
                compute_edgemap(photo, method)
            out[method] = (time.perf_counter() - t0) / len(photos)
        return out
    finally:
        cv2.setNumThreads(threads)
