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
- ``manifest.json``, written last: every other file with its size and sha256
  (:func:`verify_export` checks them; the book's site copies only an export that verifies),
  the photos' categories, the encoder's sha256 (the page refuses an encoder that is not the
  one the gallery was embedded with), and the ONNX-vs-PyTorch parity measured on real query
  sketches.

The export is built in a temporary folder beside ``out`` and renamed into place as a whole
(:func:`semi3lib.io.atomic_folder`): an earlier export there stays whole, byte for byte, when
this one fails, is killed or fills the disk, and the next export cleans up after a killed one.

The gallery is the one the checkpoint was scored on (its run's ``split.json``): for a
fine-grained (``data.protocol: instance``) checkpoint, the test photos, or every photo with
``instance_gallery="all"``. The manifest says which retrieval the model was trained for
(``protocol``: ``category``, a photo of the sketch's category, or ``instance``, the photo the
sketch was drawn from; an older manifest without it is a category model's), and for a
fine-grained model each example sketch's own photo in the gallery (``own``). The page's
preprocessing (``web/preprocess.mjs``) is a port of :func:`semi3lib.data.transforms.sketch_to_tensor`
for greyscale sketches; tests/test_interactive_export.py checks the two agree bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semi3lib.io import atomic_folder, atomic_write, atomic_write_bytes, atomic_write_text, recover_folder
from semi3lib.data.images import load_image
from semi3lib.data.transforms import resize_center_crop, sketch_to_tensor

FORMAT_NAME = "semi3-search-export"
FORMAT_VERSION = 2  # 2: manifest.json lists every file with its size and sha256
ENCODER_FILE = "sketch_encoder.onnx"
GALLERY_FILE = "gallery.f16"
INDEX_FILE = "index.npz"
MANIFEST_FILE = "manifest.json"
THUMB_SIZE = 96
EXAMPLES = 12
PARITY_SKETCHES = 20
# What a reader is told each kind of model finds (the search page's model selector).
MODEL_LABELS = {"category": "Category: a photo of the sketch's category",
                "instance": "Fine-grained: the photo this sketch was drawn from"}


def retrieval_protocol(data_protocol: str) -> str:
    """What a model trained under ``data.protocol`` retrieves: ``instance`` (the sketch's own
    photo) for the instance protocol, else ``category`` (zero-shot is category retrieval too)."""
    return "instance" if data_protocol == "instance" else "category"


def manifest_protocol(manifest: dict[str, Any]) -> str:
    """The manifest's ``protocol``; ``category`` for a manifest written before it was recorded."""
    protocol = manifest.get("protocol", "category")
    if protocol not in MODEL_LABELS:
        raise ExportError(f"{MANIFEST_FILE}: protocol {protocol!r} is not one of {', '.join(MODEL_LABELS)}")
    return protocol


def model_label(manifest: dict[str, Any]) -> str:
    """The reader's name for the exported model: what it finds for a sketch."""
    return MODEL_LABELS[manifest_protocol(manifest)]


class ExportError(ValueError):
    """A search export that does not verify against its manifest (a file missing, changed or
    added since ``semi3 export`` wrote it)."""


class SketchEncoder(torch.nn.Module):
    """The sketch branch alone: ``(B, 3, S, S)`` in [0, 1] -> L2-normalised ``(B, D)``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        return self.model.embed_sketch(sketch)


def export_onnx(model: torch.nn.Module, image_size: int, path: str | Path) -> Path:
    """Write the sketch encoder of ``model`` (on the CPU, in eval mode) as ONNX, batch dynamic."""
    encoder = SketchEncoder(model).eval()
    example = torch.zeros(1, 3, image_size, image_size)

    def write(handle: Any) -> None:
        with warnings.catch_warnings():
            # The TorchScript-based exporter is the one that handles this model's grouped
            # branches; torch announces that it is deprecated.
            warnings.simplefilter("ignore")
            torch.onnx.export(encoder, (example,), handle, input_names=["sketch"], output_names=["embedding"],
                              dynamic_axes={"sketch": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False)

    # atomically: a full disk is an OSError naming the file, never a truncated encoder
    return atomic_write(path, write)


def onnx_embed(path: str | Path, sketches: np.ndarray) -> np.ndarray:
    """Embeddings ``(B, D)`` of ``sketches`` ``(B, 3, S, S)`` float32 by onnxruntime (CPU)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"sketch": np.ascontiguousarray(sketches, dtype=np.float32)})[0]


def sketch_tensor(path: str | Path, image_size: int, strokes: str = "raw") -> torch.Tensor:
    """A sketch file as the model sees it: ``(3, S, S)`` in [0, 1] (greyscale, as ``semi3 search``)."""
    return sketch_to_tensor(load_image(path, "L"), image_size, strokes)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_export(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier export (its manifest names the format): such a
    folder is replaced by a new export; any other non-empty folder is refused."""
    try:
        return json.loads((folder / MANIFEST_FILE).read_text()).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


def _export_files(folder: Path) -> list[str]:
    """The files under ``folder`` but the manifest, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() or p.is_symlink()) if folder.is_dir() else []


def file_list(folder: Path) -> list[dict[str, Any]]:
    """What the manifest says of every other file of the export: path, bytes, sha256."""
    return [{"file": name, "bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
            for name in _export_files(folder) if name != MANIFEST_FILE]


def _referenced(manifest: dict[str, Any]) -> set[str]:
    """The files the page reads and ``semi3 search --index`` reads, as the manifest names them."""
    names = {manifest["encoder"]["file"], manifest["gallery"]["file"], INDEX_FILE}
    names.update(example["file"] for example in manifest["examples"])
    names.update(manifest["thumbs"]["pattern"].format(i) for i in range(manifest["count"]))
    return names


def export_problems(folder: str | Path) -> tuple[dict[str, Any] | None, list[str]]:
    """Check the export in ``folder`` against its manifest: (the manifest, or None if there is
    none to check against; one line per wrong file). A file is wrong if it is missing, its size
    or sha256 differ from the manifest's, or the manifest does not list it."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, ValueError) as err:
        return None, [f"{MANIFEST_FILE}: unreadable ({err})"]
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        return None, [f"{MANIFEST_FILE}: not of format {FORMAT_NAME!r}"]
    listed = manifest.get("files")
    if not isinstance(listed, list):
        return None, [f"{MANIFEST_FILE}: lists no files (format_version {manifest.get('format_version')}, "
                      f"an earlier semi3 export): export again"]
    problems = []
    sizes = {}
    for entry in listed:
        name = str(entry.get("file", "")) if isinstance(entry, dict) else ""
        if not name or Path(name).is_absolute() or ".." in Path(name).parts or name == MANIFEST_FILE:
            problems.append(f"{MANIFEST_FILE}: lists {entry!r}, not a file of the export")
            continue
        sizes[name] = entry
    try:
        for name in sorted(_referenced(manifest) - set(sizes)):
            problems.append(f"{name}: read by the page or the index but not listed in {MANIFEST_FILE}")
    except (KeyError, TypeError, ValueError, IndexError) as err:
        problems.append(f"{MANIFEST_FILE}: malformed ({type(err).__name__}: {err})")
    present = set(_export_files(folder)) - {MANIFEST_FILE}
    for name, entry in sizes.items():
        path = folder / name
        if name not in present:
            problems.append(f"{name}: missing")
        elif path.is_symlink() or not path.is_file():
            problems.append(f"{name}: not a plain file")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{name}: {path.stat().st_size} bytes, {MANIFEST_FILE} says {entry.get('bytes')}")
        elif _sha256(path) != entry.get("sha256"):
            problems.append(f"{name}: sha256 differs from {MANIFEST_FILE}")
    problems.extend(f"{name}: not listed in {MANIFEST_FILE}" for name in sorted(present - set(sizes)))
    return manifest, problems


def verify_export(folder: str | Path) -> dict[str, Any]:
    """The manifest of the export in ``folder`` if every file verifies (see
    :func:`export_problems`); else an :class:`ExportError` naming the wrong files."""
    manifest, problems = export_problems(folder)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ExportError(f"search export {folder} does not verify: {shown}")
    assert manifest is not None
    return manifest


@torch.no_grad()
def export_search(checkpoint: str | Path, out: str | Path, *, thumb_size: int = THUMB_SIZE,
                  progress: bool = True, instance_gallery: str | None = None) -> dict[str, Any]:
    """Export ``checkpoint`` for the book's search page into ``out``, as a whole (an earlier
    export there is replaced only once this one is complete); returns the manifest.
    ``instance_gallery`` (``test`` or ``all``; fine-grained checkpoints only) replaces the
    run's own ``data.instance_gallery``; None keeps it."""
    import dataclasses

    from semi3lib.data.splits import with_instance_gallery
    from semi3lib.engine.evaluate import load_trained

    started = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} not found: train one first (`make book`, or "
                                f"`semi3 train --config configs/sketchy-mini-cpu.yaml`)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    recover_folder(out)  # an earlier export that a killed export had renamed aside is put back first
    if out.is_dir() and any(out.iterdir()) and not _is_export(out):
        raise ValueError(f"--out {out} is a folder that is not empty and holds no earlier export "
                         f"({MANIFEST_FILE} of format {FORMAT_NAME!r}): choose an empty or new folder")
    model, cfg, _, data = load_trained(checkpoint, torch.device("cpu"))
    if instance_gallery is not None:
        if cfg.data.protocol != "instance":
            raise ValueError(f"--instance-gallery is for fine-grained checkpoints; {checkpoint} was trained "
                             f"under data.protocol={cfg.data.protocol} (its gallery is its split's)")
        data = dataclasses.replace(data, split=with_instance_gallery(data.split, instance_gallery))
    with atomic_folder(out) as build:
        manifest = _write_export(model, cfg, data, checkpoint, build, thumb_size=thumb_size, progress=progress)
        manifest["seconds"] = round(time.perf_counter() - started, 1)
        atomic_write_text(build / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
        (build / MANIFEST_FILE).chmod(0o644)  # served by any static web server
    return manifest


def _write_export(model: torch.nn.Module, cfg: Any, data: Any, checkpoint: Path, folder: Path, *,
                  thumb_size: int, progress: bool) -> dict[str, Any]:
    """Write every file of the export but the manifest into ``folder``; returns the manifest."""
    from semi3lib.engine.checkpoints import model_identity
    from semi3lib.retrieval.index import RetrievalIndex, save_index
    from semi3lib.retrieval.search import embed_photo_files

    device = torch.device("cpu")
    size = cfg.data.image_size
    encoder = export_onnx(model, size, folder / ENCODER_FILE)
    queries = [data.index.sketches[i] for i in data.split.query]
    picked = [queries[i] for i in np.linspace(0, len(queries) - 1, min(PARITY_SKETCHES, len(queries))).astype(int)]
    batch = torch.stack([sketch_tensor(s.path, size, cfg.data.strokes) for s in picked])
    parity = float(np.abs(onnx_embed(encoder, batch.numpy()) - model.embed_sketch(batch).numpy()).max())

    photos = [data.index.photos[j] for j in data.split.gallery]
    embeddings, paths, skipped = embed_photo_files(model, cfg, [p.path for p in photos], device, progress=progress)
    if skipped:
        raise ValueError(f"{skipped} gallery photo(s) could not be read; the export needs every one")
    categories = [p.category for p in photos]
    identity = model_identity(model, cfg)
    identity.update(checkpoint=str(checkpoint.resolve()))
    save_index(RetrievalIndex(embeddings=embeddings, paths=paths, model_identity=identity, labels=categories),
               folder / INDEX_FILE)
    atomic_write_bytes(folder / GALLERY_FILE, embeddings.astype("<f2").tobytes())

    (folder / "thumbs").mkdir()
    for i, photo in enumerate(photos):
        resize_center_crop(load_image(photo.path, "RGB"), thumb_size).save(folder / "thumbs" / f"{i:05d}.jpg",
                                                                           quality=82)
    (folder / "examples").mkdir()
    step = max(1, len(queries) // EXAMPLES)
    protocol = retrieval_protocol(cfg.data.protocol)
    picked_queries = list(data.split.query)[::step][:EXAMPLES]
    own = _own_gallery_columns(data, picked_queries) if protocol == "instance" else None
    examples = []
    for n, k in enumerate(picked_queries):
        sketch = data.index.sketches[k]
        load_image(sketch.path, "L").save(folder / "examples" / f"{n:02d}.png")
        examples.append({"file": f"examples/{n:02d}.png", "category": sketch.category})
        if own is not None and own[n] >= 0:  # the page marks the photo this sketch was drawn from
            examples[-1]["own"] = int(own[n])

    category_names = sorted(set(categories))
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "protocol": protocol,
        "checkpoint": str(checkpoint),
        "model_identity": identity,
        "image_size": size,
        "strokes": cfg.data.strokes,  # the page redraws a drawing's strokes as the model was trained (web/strokes.mjs)
        "embed_dim": int(embeddings.shape[1]),
        "count": len(photos),
        "encoder": {"file": ENCODER_FILE, "bytes": encoder.stat().st_size, "sha256": _sha256(encoder),
                    "dtype": "float32", "max_abs_diff_vs_pytorch": parity, "parity_sketches": len(picked)},
        "gallery": {"file": GALLERY_FILE, "dtype": "float16", "bytes": (folder / GALLERY_FILE).stat().st_size},
        "categories": category_names,
        "photos": [{"name": Path(p.path).name, "category": category_names.index(p.category)} for p in photos],
        "thumbs": {"pattern": "thumbs/{:05d}.jpg", "size": thumb_size},
        "examples": examples,
        "files": file_list(folder),
    }


def _own_gallery_columns(data: Any, sketch_positions: list[int]) -> np.ndarray:
    """Each sketch's own photo as a position in the export's gallery (-1 where it holds none)."""
    from semi3lib.data.instance import own_gallery_columns, own_photo_positions

    return own_gallery_columns(own_photo_positions(data.index, sketch_positions), data.split.gallery)
