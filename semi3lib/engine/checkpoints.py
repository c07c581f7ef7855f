"""What a checkpoint holds and how it is read: model weights, the run's config, RNG states,
and the identity (backbone, sizes, a digest of the weights) that an index or an export records
so that another model's embeddings are never mixed with these.

A checkpoint holds data, never code: tensors and plain Python values (dicts, lists, tuples,
strings, numbers, None) only, and it is read with ``torch.load(weights_only=True)``, whose
unpickler refuses everything else, so a file whose pickle would run a payload is refused
before any of it runs. Checkpoints are what researchers download and pass around.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semi3lib.config import ExperimentConfig
from semi3lib.io import atomic_write, check_output_file

# What every consumer of a checkpoint reads, and what ``semi3 train --resume`` reads besides.
MODEL_ENTRIES = ("model", "config", "num_classes")
RESUME_ENTRIES = ("optimizer", "scheduler", "epoch", "best", "history", "rng")

# The only non-plain objects in a checkpoint written before checkpoints were data only: numpy
# arrays in the RNG states (numpy's MT19937 key). ``semi3 checkpoint upgrade`` reads these,
# and nothing else; ``numpy.core`` is the name numpy 1.x pickled its arrays under.
LEGACY_GLOBALS = {
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
    "numpy._core.multiarray._reconstruct": np._core.multiarray._reconstruct,
    "numpy.core.multiarray._reconstruct": np._core.multiarray._reconstruct,
}
# Not named in the pickle, but rebuilt by it: the dtype of numpy's MT19937 key.
LEGACY_BUILT_TYPES = [np.dtypes.UInt32DType]


class CheckpointError(ValueError):
    """A file that is not a checkpoint this version reads, or one that holds more than data:
    one line that says which and what to do."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


# --------------------------------------------------------------------------- RNG states


def rng_state() -> dict[str, Any]:
    """This process's random states (Python, numpy, torch, CUDA) as tensors and plain values,
    so that a checkpoint holding them loads with ``weights_only=True``."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return plain_rng_state(state)


def plain_rng_state(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with Python's ``random.getstate()`` tuple and numpy's ``get_state()`` tuple
    (as checkpoints before data-only checkpoints held them) as dicts of tensors and numbers;
    a state already plain is returned as it is."""
    python, numpy_state = state["python"], state["numpy"]
    plain = dict(state)
    if isinstance(python, tuple):
        version, internal, gauss_next = python
        # 624 words of 32 bits and a position: int64 holds them exactly.
        plain["python"] = {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                           "gauss_next": gauss_next}
    if isinstance(numpy_state, tuple):
        algorithm, key, pos, has_gauss, cached_gaussian = numpy_state
        plain["numpy"] = {"algorithm": str(algorithm), "key": torch.from_numpy(np.asarray(key).astype(np.int64)),
                          "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}
    if "cuda" in plain:
        plain["cuda"] = list(plain["cuda"])
    return plain


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the random states :func:`rng_state` saved, bit for bit."""
    python, numpy_state = state["python"], state["numpy"]
    random.setstate((python["version"], tuple(int(x) for x in python["state"].tolist()), python["gauss_next"]))
    np.random.set_state((numpy_state["algorithm"], numpy_state["key"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- identity


def weights_digest(model: torch.nn.Module) -> str:
    """A short sha256 of the model's parameters and buffers: identifies *these* weights,
    so an index built by one model is refused by another."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def model_identity(model: torch.nn.Module, cfg: ExperimentConfig) -> dict[str, Any]:
    return {
        "backbone": cfg.model.backbone,
        "embed_dim": cfg.model.embed_dim,
        "image_size": cfg.data.image_size,
        "edge_method": cfg.data.edge_method,
        "weights": weights_digest(model),
    }


# --------------------------------------------------------------------------- reading


def is_checkpoint_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``torch.save`` archive (a zip with a ``data.pkl``), judged from
    the zip's directory alone: nothing in it is unpickled."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return text if len(text) <= limit else text[:limit] + "..."


def disallowed_globals(path: Path, err: BaseException | None = None) -> list[str]:
    """The classes and functions ``path``'s pickle names that a data-only checkpoint may not
    (read statically, nothing run); else those named in the refusal ``err`` of ``torch.load``."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 (not a zip archive: fall back on the unpickler's own words)
        names = []
    if not names and err is not None:
        names = re.findall(r"GLOBAL ([\w.]+)", str(err))
    return sorted(set(names))


def _refusal(path: Path, names: list[str]) -> CheckpointError:
    if set(names) <= set(LEGACY_GLOBALS):
        return CheckpointError(
            f"{path} is a checkpoint of an earlier semi3lib (numpy arrays in its RNG state), which is not "
            f"read as it is; convert it once, without running anything in it: semi3 checkpoint upgrade {path} NEW.pt")
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return CheckpointError(f"{path} holds objects a checkpoint may not hold ({shown}): refused, nothing in it "
                           "was run (a semi3 checkpoint holds only tensors and plain data)")


def _torch_load_data_only(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain values, or :class:`CheckpointError`."""
    if not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch's errors, whatever their type, become one line)
        names = disallowed_globals(path, err) if isinstance(err, pickle.UnpicklingError) else []
        if names:
            raise _refusal(path, names) from None
        if not is_checkpoint_file(path):
            raise CheckpointError(f"{path} is not a checkpoint: not a torch.save archive (truncated, or another "
                                  "kind of file)") from None
        raise CheckpointError(f"{path} is not a readable semi3 checkpoint ({type(err).__name__}: "
                              f"{_first_line(err)})") from None

def check_checkpoint(ckpt: Any, path: str | os.PathLike, resume: bool = False) -> dict[str, Any]:
    """``ckpt`` when it has the entries a model (and, with ``resume``, a resumed run) is
    rebuilt from, of the right kinds; else :class:`CheckpointError` naming what is wrong."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a semi3 checkpoint (it holds a {type(ckpt).__name__}, not a dict)")

    def require(*keys: str) -> None:
        missing = [key for key in keys if key not in ckpt]
        if missing:
            raise CheckpointError(f"{path} is not a checkpoint written by semi3 train: no {', '.join(missing)} "
                                  f"entr{'y' if len(missing) == 1 else 'ies'}")

    require("model", "config")
    weights = ckpt["model"]
    if not isinstance(weights, dict) or not weights or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise CheckpointError(f"{path}: its model entry holds no weights (not a non-empty mapping of parameter "
                              "names to tensors)")
    if not isinstance(ckpt["config"], dict):
        raise CheckpointError(f"{path}: its config entry is a {type(ckpt['config']).__name__}, not a mapping")
    require(*MODEL_ENTRIES)
    classes = ckpt["num_classes"]
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise CheckpointError(f"{path}: num_classes is {classes!r}, not a whole number >= 1")
    if resume:
        require(*RESUME_ENTRIES)
        states = ckpt["rng"]
        if not isinstance(states, list) or not states or not all(
                isinstance(s, dict) and {"python", "numpy", "torch"} <= set(s) for s in states):
            raise CheckpointError(f"{path}: its rng entry is not a list of RNG states; the run cannot be resumed")
    return ckpt


def load_checkpoint_file(path: str | os.PathLike, resume: bool = False) -> dict[str, Any]:
    """Read a checkpoint written by ``semi3 train`` as data only (``weights_only=True``) and
    check its entries (see :func:`check_checkpoint`). A file whose pickle names anything but
    tensors and plain values is refused before any of it runs, with one line that says why
    (for a checkpoint of an earlier semi3lib: how to convert it)."""
    path = Path(path)
    return check_checkpoint(_torch_load_data_only(path), path, resume)


# --------------------------------------------------------------------------- upgrading


def upgrade_checkpoint(old: str | os.PathLike, new: str | os.PathLike, overwrite: bool = False) -> dict[str, Any]:
    """Convert a checkpoint of an earlier semi3lib (numpy arrays in its RNG states) to the
    data-only format, written to ``new``; returns the converted checkpoint.

    ``old`` is read by the same restricted unpickler as every checkpoint, with numpy's array
    and dtype allowed for this one read (they rebuild arrays, run no code); a file that names
    anything else is refused as :func:`load_checkpoint_file` refuses it. ``new`` is checked
    first (not ``old``, not a folder, not an existing file unless ``overwrite``)."""
    old, new = Path(old), Path(new)
    check_output_file(new, inputs=[old], overwrite=overwrite, what="upgraded checkpoint")
    if old.is_file():
        names = disallowed_globals(old)
        if not set(names) <= set(LEGACY_GLOBALS):
            raise _refusal(old, names)
    allowed = [(obj, name) for name, obj in LEGACY_GLOBALS.items()] + LEGACY_BUILT_TYPES
    with torch.serialization.safe_globals(allowed):
        ckpt = check_checkpoint(_torch_load_data_only(old), old)
    ckpt["rng"] = [plain_rng_state(state) for state in ckpt.get("rng", [])]
    atomic_torch_save(ckpt, new)
    return load_checkpoint_file(new)  # proves the result reads as data only



def weights_mismatch(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """``(missing, unexpected)``: the names of ``model``'s parameters and buffers that
    ``weights`` lacks or has in another shape, and the names ``weights`` has beyond them."""
    expected = model.state_dict()
    missing = [name for name, tensor in expected.items()
               if name not in weights or tuple(weights[name].shape) != tuple(tensor.shape)]
    return missing, [name for name in weights if name not in expected]


# --------------------------------------------------------------------------- starting from a checkpoint

# The category classifier: sized (and ordered) by the categories its run trained on.
CLASSIFIER_PREFIX = "classifier."


def initial_weights(model: torch.nn.Module, ckpt: dict[str, Any], path: str | os.PathLike,
                    categories: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint (as :func:`load_checkpoint_file` returns it) that start
    ``model`` (``train.init_from``): all of them, except the category classifier's unless the
    checkpoint was trained on the same ``categories`` in the same order (it then keeps its fresh
    initialisation). Any other weight that ``model`` lacks or holds in another shape is a
    :class:`CheckpointError`. ``model`` may live on torch's ``meta`` device (a pre-run check)."""
    weights = dict(ckpt["model"])
    if categories is None or list(ckpt.get("categories") or []) != list(categories):
        weights = {k: v for k, v in weights.items() if not k.startswith(CLASSIFIER_PREFIX)}
    missing, unexpected = weights_mismatch(model, weights)
    bad = [n for n in missing if not n.startswith(CLASSIFIER_PREFIX)] + unexpected
    if bad:
        raise CheckpointError(f"{path}: train.init_from needs a checkpoint of the same network (model.* settings); "
                              f"{len(bad)} of its weights do not fit this one (e.g. {bad[0]})")
    return weights


def load_initial_weights(model: torch.nn.Module, path: str | os.PathLike,
                         categories: list[str] | None = None) -> dict[str, Any]:
    """Start ``model`` from the checkpoint ``path`` (read as data only), as
    :func:`initial_weights` chooses. Returns what was done: ``init_from``, ``loaded`` (tensors)
    and ``kept_fresh`` (the names of the weights left as initialised)."""
    weights = initial_weights(model, load_checkpoint_file(path), path, categories)
    model.load_state_dict(weights, strict=False)
    return {"init_from": str(path), "loaded": len(weights),
            "kept_fresh": sorted(set(model.state_dict()) - set(weights))}
