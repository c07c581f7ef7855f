"""torch Datasets for training (sketch, photo, edgemap triplets), the gallery and the queries.

Images come out as float tensors in [0, 1] of shape (3, S, S): the shorter side resized to S,
then a centre crop. Sketches and edgemaps (one channel) are repeated to 3 channels so the
shared sketch/edge bottom can start from ImageNet weights. Normalisation belongs to the model.

An unreadable file (not an image, truncated, a decompression bomb: see
:func:`~semi3lib.data.images.load_image`) never stops an epoch; it is warned about once (with
its path) and counted in ``bad_files``. Then:

- training (:class:`TrainTriplets`, :class:`InstanceTriplets`) replaces it: the item is rebuilt around the next sketch,
  and the item says how many draws it passed over (``replaced``), so a training loop can count
  them even when DataLoader workers (each with its own ``bad_files``) did the loading;
- the gallery and the queries (:class:`GalleryPhotos`, :class:`QuerySketches`) mark it
  ``valid=False`` with label :data:`NO_LABEL`: a placeholder that keeps the batch shape, carries
  no category, and that embedding drops (``engine.embedding``). It is out of the computation,
  never scored as a blank photo of its category.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from semi3lib.data.doodle_augment import doodle_like
from semi3lib.data.edgemaps import EdgeCache
from semi3lib.data.images import UnreadableImageError, load_image
from semi3lib.data.instance import NO_PHOTO, own_photo_positions
from semi3lib.data.layouts import DatasetIndex
from semi3lib.data.quickdraw import doodle_image
from semi3lib.data.splits import Split
from semi3lib.data.transforms import prepare_sketch, resize_center_crop, to_tensor

__all__ = ["DEFAULT_CACHE_DIR", "NO_LABEL", "GalleryPhotos", "InstanceTriplets", "QuerySketches", "TrainTriplets",
           "resize_center_crop", "to_tensor"]

DEFAULT_CACHE_DIR = Path("cache") / "edges"
_MAX_ATTEMPTS = 20
# The label of an unreadable gallery photo or query sketch: no category (labels are >= 0).
NO_LABEL = -1


class _Loader:
    """Shared file handling: image loading, the edge cache, and the once-per-path warnings."""

    def __init__(self, index: DatasetIndex, image_size: int, edge_method: str | None,
                 cache_dir: str | os.PathLike | None, edge_params: dict[str, Any] | None = None) -> None:
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}")
        self.index = index
        self.image_size = image_size
        self.edges = (EdgeCache(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR, edge_method, edge_params)
                      if edge_method else None)
        self.bad_files: set[str] = set()

    def report_bad(self, err: UnreadableImageError) -> None:
        path = str(err.path)
        if path not in self.bad_files:
            self.bad_files.add(path)
            warnings.warn(f"skipping unreadable image {path} ({err.reason})", RuntimeWarning, stacklevel=3)

    def sketch_image(self, i: int) -> Image.Image:
        return resize_center_crop(load_image(self.index.sketches[i].path, "L"), self.image_size)

    def photo_and_edge(self, j: int) -> tuple[Image.Image, Image.Image]:
        path = self.index.photos[j].path
        photo = load_image(path, "RGB")
        # The edgemap is computed at the photo's own resolution and then resized with it, so
        # both crops cover exactly the same pixels.
        edge = Image.fromarray(self.edges.get(path), mode="L") if self.edges else Image.new("L", photo.size, 255)
        return resize_center_crop(photo, self.image_size), resize_center_crop(edge, self.image_size)


class _PairedItems(Dataset):
    """What the two training datasets share: item ``i`` is a sketch with a photo and that
    photo's edgemap, loaded, flipped (the sketch independently, the photo and its edgemap
    together), optionally doodle-augmented and stroke-normalised. Randomness depends only on
    (seed, epoch, i): call :meth:`set_epoch` each epoch. An unreadable sketch or photo is
    replaced: the item is built around the next sketch with a fresh draw, and ``replaced``
    (long) counts the draws passed over (0 normally). Subclasses say which sketch and photo
    item ``i`` is (:meth:`_choose`)."""

    def __init__(self, index: DatasetIndex, image_size: int, edge_method: str, hflip: bool,
                 cache_dir: str | os.PathLike | None, seed: int, edge_params: dict[str, Any] | None,
                 strokes: str, doodle_augment: float) -> None:
        if not 0.0 <= doodle_augment <= 1.0:
            raise ValueError(f"doodle_augment must be in [0, 1], got {doodle_augment}")
        self.loader = _Loader(index, image_size, edge_method, cache_dir, edge_params)
        self.index = index
        self.hflip = hflip
        self.strokes = strokes
        self.doodle_augment = doodle_augment
        self.seed = seed
        self.epoch = 0

    @property
    def bad_files(self) -> set[str]:
        return self.loader.bad_files

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _choose(self, i: int, attempt: int, rng: np.random.Generator
                ) -> tuple[Callable[[], Image.Image], int, int, dict[str, torch.Tensor]]:
        """Item ``i`` on try ``attempt``: how to load its sketch, the sketch's label, the photo
        (position in ``index.photos``) and the item's extra fields."""
        raise NotImplementedError

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        for attempt in range(_MAX_ATTEMPTS):
            # An unreadable sketch or photo: rebuild the item around the next sketch, fresh draw.
            rng = np.random.default_rng([self.seed, self.epoch, i, attempt])
            load_sketch, label, j, extra = self._choose(i, attempt, rng)
            flip_sketch, flip_photo = rng.random(2) < 0.5
            try:
                sketch = load_sketch()
                photo, edge = self.loader.photo_and_edge(j)
            except UnreadableImageError as err:
                self.loader.report_bad(err)
                continue
            if self.hflip and flip_sketch:
                sketch = sketch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if self.doodle_augment:  # its own stream: runs without it draw exactly as before
                aug = np.random.default_rng([self.seed, self.epoch, i, attempt, 1])
                if aug.random() < self.doodle_augment:
                    sketch = doodle_like(sketch, aug)
            sketch = prepare_sketch(sketch, self.strokes)
            if self.hflip and flip_photo:
                photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                edge = edge.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            photo_label = self.index.label_of(self.index.photos[j].category)
            return {
                "sketch": to_tensor(sketch),
                "photo": to_tensor(photo),
                "edge": to_tensor(edge),
                "sketch_label": torch.tensor(label, dtype=torch.long),
                "photo_label": torch.tensor(photo_label, dtype=torch.long),
                "same": torch.tensor(float(photo_label == label)),
                **extra,
                "replaced": torch.tensor(attempt, dtype=torch.long),
            }
        raise RuntimeError(
            f"{_MAX_ATTEMPTS} consecutive unreadable items around training item {i}; "
            f"bad files so far: {sorted(self.bad_files)[:5]}"
        )


class TrainTriplets(_PairedItems):
    """Item ``i`` is built around training sketch ``split.train_sketches[i]`` (past them, a
    Quick, Draw! doodle of ``doodles``).

    Returns a dict: ``sketch``, ``photo``, ``edge`` (3, S, S) float in [0, 1] (``edge`` is the
    edgemap of that same photo); ``sketch_label``, ``photo_label`` (long); ``same`` (float, 1
    when the photo's category is the sketch's); ``replaced`` (see :class:`_PairedItems`). With
    probability ``positive_fraction`` the photo is drawn from the sketch's category, else from
    a uniformly chosen other category, giving balanced sketch-edgemap pairs for the contrastive
    loss. Flips, augmentation and unreadable files as :class:`_PairedItems` says.
    """

    def __init__(self, index: DatasetIndex, split: Split, image_size: int = 128, edge_method: str = "canny",
                 hflip: bool = True, positive_fraction: float = 0.5, cache_dir: str | os.PathLike | None = None,
                 seed: int = 0, edge_params: dict[str, Any] | None = None, strokes: str = "raw",
                 doodle_augment: float = 0.0, doodles: Sequence[tuple[np.ndarray, int]] = ()) -> None:
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        if not split.train_sketches or not split.train_photos:
            raise ValueError("the split has no training sketches or no training photos")
        super().__init__(index, image_size, edge_method, hflip, cache_dir, seed, edge_params, strokes, doodle_augment)
        self.sketch_ids = list(split.train_sketches)
        self.positive_fraction = positive_fraction
        self.doodles = list(doodles)  # (28 x 28 ink bitmap, label): extra training sketches after the files
        photos_by_cat: dict[int, list[int]] = defaultdict(list)
        for j in split.train_photos:
            photos_by_cat[index.label_of(index.photos[j].category)].append(j)
        self.photos_by_label = dict(photos_by_cat)
        self.photo_labels = sorted(self.photos_by_label)

    def __len__(self) -> int:
        return len(self.sketch_ids) + len(self.doodles)

    def _sketch(self, i: int, attempt: int) -> tuple[Callable[[], Image.Image], int]:
        """Item ``i``'s label and how to load its sketch at the model's size: a sketch file (the
        next one on a retry) or, past the files, a Quick, Draw! doodle."""
        n = len(self.sketch_ids)
        if i >= n:
            bitmap, label = self.doodles[i - n]
            return lambda: resize_center_crop(doodle_image(bitmap), self.loader.image_size), label
        k = self.sketch_ids[(i + attempt) % n]
        return lambda: self.loader.sketch_image(k), self.index.label_of(self.index.sketches[k].category)

    def _draw_photo(self, rng: np.random.Generator, label: int) -> int:
        others = [c for c in self.photo_labels if c != label]
        same = label in self.photos_by_label and (not others or rng.random() < self.positive_fraction)
        pool = self.photos_by_label[label if same else others[rng.integers(len(others))]]
        return pool[rng.integers(len(pool))]

    def _choose(self, i: int, attempt: int, rng: np.random.Generator
                ) -> tuple[Callable[[], Image.Image], int, int, dict[str, torch.Tensor]]:
        load_sketch, label = self._sketch(i, attempt)
        return load_sketch, label, self._draw_photo(rng, label), {}


class InstanceTriplets(_PairedItems):
    """The instance protocol's training items: item ``i`` is training sketch
    ``split.train_sketches[i]`` with its **own** photo (the one it was drawn from) and that
    photo's edgemap, so the sketch-edgemap terms pair a sketch with the outline of its own photo.

    Returns what :class:`TrainTriplets` returns (``same`` is 1: the photo is of the sketch's
    category) plus ``photo_index`` (long, the photo's position in ``index.photos``), by which
    the instance loss tells a sketch's own photo from the other photos of the batch. Which
    items form a batch is :class:`~semi3lib.data.instance.InstanceBatchSampler`'s choice (see
    :attr:`item_photos`, :attr:`item_categories`). Flips, augmentation and unreadable files as
    :class:`_PairedItems` says (a replaced item is the next sketch, with its own photo).
    """

    def __init__(self, index: DatasetIndex, split: Split, image_size: int = 128, edge_method: str = "canny",
                 hflip: bool = True, cache_dir: str | os.PathLike | None = None, seed: int = 0,
                 edge_params: dict[str, Any] | None = None, strokes: str = "raw",
                 doodle_augment: float = 0.0) -> None:
        super().__init__(index, image_size, edge_method, hflip, cache_dir, seed, edge_params, strokes, doodle_augment)
        own = own_photo_positions(index, split.train_sketches)
        kept = own != NO_PHOTO  # a sketch whose photo is not indexed has no positive
        self.sketch_ids = [k for k, keep in zip(split.train_sketches, kept) if keep]
        self.own_photos = [int(j) for j in own[kept]]
        if not self.sketch_ids:
            raise ValueError("the split has no training sketches whose own photo is in the dataset")

    @property
    def item_photos(self) -> list[int]:
        """The own photo (position in ``index.photos``) of every item."""
        return list(self.own_photos)

    @property
    def item_categories(self) -> list[str]:
        """The category of every item."""
        return [self.index.sketches[k].category for k in self.sketch_ids]

    def __len__(self) -> int:
        return len(self.sketch_ids)

    def _choose(self, i: int, attempt: int, rng: np.random.Generator
                ) -> tuple[Callable[[], Image.Image], int, int, dict[str, torch.Tensor]]:
        item = (i + attempt) % len(self.sketch_ids)
        k, j = self.sketch_ids[item], self.own_photos[item]
        label = self.index.label_of(self.index.sketches[k].category)
        return (lambda: self.loader.sketch_image(k)), label, j, {"photo_index": torch.tensor(j, dtype=torch.long)}


def _blank(size: int) -> torch.Tensor:
    return torch.ones(3, size, size)


class GalleryPhotos(Dataset):
    """Gallery photo ``photo_indices[i]`` with its edgemap: ``photo``, ``edge`` (3, S, S),
    ``label`` (long), ``index`` (position in ``index.photos``), ``valid``. An unreadable file
    is ``valid=False`` with label :data:`NO_LABEL` and white images: a placeholder that
    embedding drops, never a photo of its category. ``edge_method=None`` skips edgemaps
    (``edge`` is then white)."""

    def __init__(self, index: DatasetIndex, photo_indices: list[int], image_size: int = 128,
                 edge_method: str = "canny", cache_dir: str | os.PathLike | None = None,
                 edge_params: dict[str, Any] | None = None) -> None:
        self.loader = _Loader(index, image_size, edge_method, cache_dir, edge_params)
        self.index = index
        self.photo_indices = list(photo_indices)

    @property
    def bad_files(self) -> set[str]:
        return self.loader.bad_files

    def __len__(self) -> int:
        return len(self.photo_indices)

    def path(self, i: int) -> Path:
        """The file of item ``i``."""
        return self.index.photos[self.photo_indices[i]].path

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = self.photo_indices[i]
        try:
            photo, edge = self.loader.photo_and_edge(j)
            photo_t, edge_t, valid = to_tensor(photo), to_tensor(edge), True
            label = self.index.label_of(self.index.photos[j].category)
        except UnreadableImageError as err:
            self.loader.report_bad(err)
            photo_t, edge_t, valid = _blank(self.loader.image_size), _blank(self.loader.image_size), False
            label = NO_LABEL
        return {"photo": photo_t, "edge": edge_t, "label": torch.tensor(label, dtype=torch.long),
                "index": torch.tensor(j), "valid": torch.tensor(valid)}


class QuerySketches(Dataset):
    """Query sketch ``sketch_indices[i]``: ``sketch`` (3, S, S), ``label`` (long), ``index``
    (position in ``index.sketches``), ``valid``. An unreadable file is ``valid=False`` with
    label :data:`NO_LABEL` and a white image, which embedding drops."""

    def __init__(self, index: DatasetIndex, sketch_indices: list[int], image_size: int = 128,
                 strokes: str = "raw") -> None:
        self.loader = _Loader(index, image_size, None, None)
        self.strokes = strokes
        self.index = index
        self.sketch_indices = list(sketch_indices)

    @property
    def bad_files(self) -> set[str]:
        return self.loader.bad_files

    def __len__(self) -> int:
        return len(self.sketch_indices)

    def path(self, i: int) -> Path:
        """The file of item ``i``."""
        return self.index.sketches[self.sketch_indices[i]].path

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k = self.sketch_indices[i]
        try:
            sketch, valid = to_tensor(prepare_sketch(self.loader.sketch_image(k), self.strokes)), True
            label = self.index.label_of(self.index.sketches[k].category)
        except UnreadableImageError as err:
            self.loader.report_bad(err)
            sketch, valid, label = _blank(self.loader.image_size), False, NO_LABEL
        return {"sketch": sketch, "label": torch.tensor(label, dtype=torch.long), "index": torch.tensor(k),
                "valid": torch.tensor(valid)}
