"""``semi3 export``: what the book's search page needs to search in the browser, with no
Python server.

``export_search(checkpoint, out)`` writes into ``out``:

- ``sketch_encoder.onnx``: the trained model's sketch branch, ``(B, 3, S, S)`` images in
  [0, 1] -> L2-normalised ``(B, D)`` embeddings (the backbone normalisation is inside), fp32;
- ``gallery.f16``: the gallery photos' embeddings, ``(N, D)`` little-endian float16;
- ``thumbs/NNNNN.jpg``: a small thumbnail of every gallery photo (fetched only when shown);
- ``examples/NN.png``: a few query sketches to pick from, for readers without a mouse;
- ``index.npz``: the same gallery as a retrieval index (fp32), so ``semi3 search --index``
  answers with the same model and photos as the page;
- ``manifest.json``: sizes, the photos' categories, the encoder's sha256 (the page refuses an
  encoder that is not the one the gallery was embedded with), and the ONNX-vs-PyTorch parity
  measured on real query sketches.

The gallery is the one the checkpoint was scored on (its run's ``split.json``). The page's
preprocessing (``web/preprocess.mjs``) is a port of :func:`semi3lib.data.transforms.image_to_tensor`
for greyscale sketches; tests/test_interactive_export.py checks the two agree bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semi3lib.io import atomic_write_bytes, atomic_write_text
from semi3lib.data.images import load_image
from semi3lib.data.transforms import image_to_tensor, resize_center_crop

FORMAT_NAME = "semi3-search-export"
FORMAT_VERSION = 1
ENCODER_FILE = "sketch_encoder.onnx"
GALLERY_FILE = "gallery.f16"
INDEX_FILE = "index.npz"
MANIFEST_FILE = "manifest.json"
THUMB_SIZE = 96
EXAMPLES = 12
PARITY_SKETCHES = 20


class SketchEncoder(torch.nn.Module):
    """The sketch branch alone: ``(B, 3, S, S)`` in [0, 1] -> L2-normalised ``(B, D)``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        return self.model.embed_sketch(sketch)


def export_onnx(model: torch.nn.Module, image_size: int, path: str | Path) -> Path:
    """Write the sketch encoder of ``model`` (on the CPU, in eval mode) as ONNX, batch dynamic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoder = SketchEncoder(model).eval()
    example = torch.zeros(1, 3, image_size, image_size)
    with warnings.catch_warnings():
        # The TorchScript-based exporter is the one that handles this model's grouped
        # branches; torch announces that it is deprecated.
        warnings.simplefilter("ignore")
        torch.onnx.export(encoder, (example,), str(path), input_names=["sketch"], output_names=["embedding"],
                          dynamic_axes={"sketch": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False)
    return path


def onnx_embed(path: str | Path, sketches: np.ndarray) -> np.ndarray:
    """Embeddings ``(B, D)`` of ``sketches`` ``(B, 3, S, S)`` float32 by onnxruntime (CPU)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"sketch": np.ascontiguousarray(sketches, dtype=np.float32)})[0]


def sketch_tensor(path: str | Path, image_size: int) -> torch.Tensor:
    """A sketch file as the model sees it: ``(3, S, S)`` in [0, 1] (greyscale, as ``semi3 search``)."""
    return image_to_tensor(load_image(path, "L"), image_size)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_export(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier export (its manifest names the format): such a
    folder is replaced by a new export; any other non-empty folder is refused."""
    try:
        return json.loads((folder / MANIFEST_FILE).read_text()).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


@torch.no_grad()
def export_search(checkpoint: str | Path, out: str | Path, *, thumb_size: int = THUMB_SIZE,
                  progress: bool = True) -> dict[str, Any]:
    """Export ``checkpoint`` for the book's search page into ``out``; returns the manifest."""
    from semi3lib.engine.evaluate import load_trained
    from semi3lib.retrieval.index import RetrievalIndex, save_index
    from semi3lib.retrieval.search import embed_photo_files
    from semi3lib.engine.checkpoints import model_identity

    started = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} not found: train one first (`make book`, or "
                                f"`semi3 train --config configs/sketchy-mini-cpu.yaml`)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not _is_export(out):
        raise ValueError(f"--out {out} is a folder that is not empty and holds no earlier export "
                         f"({MANIFEST_FILE} of format {FORMAT_NAME!r}): choose an empty or new folder")
    device = torch.device("cpu")
    model, cfg, _, data = load_trained(checkpoint, device)
    size = cfg.data.image_size
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("thumbs", "examples"):
        shutil.rmtree(out / stale, ignore_errors=True)

    encoder = export_onnx(model, size, out / ENCODER_FILE)
    queries = [data.index.sketches[i] for i in data.split.query]
    picked = [queries[i] for i in np.linspace(0, len(queries) - 1, min(PARITY_SKETCHES, len(queries))).astype(int)]
    batch = torch.stack([sketch_tensor(s.path, size) for s in picked])
    parity = float(np.abs(onnx_embed(encoder, batch.numpy()) - model.embed_sketch(batch).numpy()).max())

    photos = [data.index.photos[j] for j in data.split.gallery]
    embeddings, paths, skipped = embed_photo_files(model, cfg, [p.path for p in photos], device, progress=progress)
    if skipped:
        raise ValueError(f"{skipped} gallery photo(s) could not be read; the export needs every one")
    categories = [p.category for p in photos]
    identity = model_identity(model, cfg)
    identity.update(checkpoint=str(checkpoint.resolve()))
    save_index(RetrievalIndex(embeddings=embeddings, paths=paths, model_identity=identity, labels=categories),
               out / INDEX_FILE)
    atomic_write_bytes(out / GALLERY_FILE, embeddings.astype("<f2").tobytes())

    (out / "thumbs").mkdir()
    for i, photo in enumerate(photos):
        resize_center_crop(load_image(photo.path, "RGB"), thumb_size).save(out / "thumbs" / f"{i:05d}.jpg", quality=82)
    (out / "examples").mkdir()
    step = max(1, len(queries) // EXAMPLES)
    examples = []
    for n, sketch in enumerate(queries[::step][:EXAMPLES]):
        load_image(sketch.path, "L").save(out / "examples" / f"{n:02d}.png")
        examples.append({"file": f"examples/{n:02d}.png", "category": sketch.category})

    category_names = sorted(set(categories))
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "checkpoint": str(checkpoint),
        "model_identity": identity,
        "image_size": size,
        "embed_dim": int(embeddings.shape[1]),
        "count": len(photos),
        "encoder": {"file": ENCODER_FILE, "bytes": encoder.stat().st_size, "sha256": _sha256(encoder),
                    "dtype": "float32", "max_abs_diff_vs_pytorch": parity, "parity_sketches": len(picked)},
        "gallery": {"file": GALLERY_FILE, "dtype": "float16", "bytes": (out / GALLERY_FILE).stat().st_size},
        "categories": category_names,
        "photos": [{"name": Path(p.path).name, "category": category_names.index(p.category)} for p in photos],
        "thumbs": {"pattern": "thumbs/{:05d}.jpg", "size": thumb_size},
        "examples": examples,
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
    (out / MANIFEST_FILE).chmod(0o644)  # served by any static web server
    return manifest
