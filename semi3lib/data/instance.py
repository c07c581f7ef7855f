"""The instance-level (fine-grained) protocol's data: which photo each sketch was drawn from,
the photo split, batches with several photos per category, and the photos two datasets share.

Instance-level SBIR asks for *this* photo, not a photo of the category: a query sketch has one
right answer, the photo it was drawn from (its *own* photo). In Sketchy's layout a sketch
``sketch/<variant>/<category>/<id>-<k>.png`` names its photo ``photo/.../<category>/<id>.jpg``;
a photo is keyed ``"<category>/<id>"`` (:func:`photo_key`), the spelling ``split.json`` uses.

The split is over photos: a sketch follows its photo. A dataset root with a ``split.json``
(``{"train": [keys], "test": [keys]}``, e.g. sketchy-fg10's) gives it; without one, a seeded
:data:`INSTANCE_TEST_FRACTION` of each category's photos is the test side
(:func:`seeded_photo_split`). :func:`semi3lib.data.splits.make_split` builds the protocol's
:class:`~semi3lib.data.splits.Split` from it.

No torch here: the command line reads splits without it.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from semi3lib.data.layouts import DatasetIndex, DatasetLayoutError

PHOTO_SPLIT_FILE = "split.json"
INSTANCE_TEST_FRACTION = 0.2  # a dataset without split.json: this share of each category's photos tests
NO_PHOTO = -1  # own_photo_positions of a sketch whose photo the index does not hold


def photo_key(index: DatasetIndex, j: int) -> str:
    """``"<category>/<file stem>"`` of photo ``j``: the id :data:`PHOTO_SPLIT_FILE` uses."""
    photo = index.photos[j]
    return f"{photo.category}/{Path(photo.path).stem}"


def sketch_photo_key(index: DatasetIndex, k: int) -> str | None:
    """The key of the photo sketch ``k`` was drawn from, None when its name does not say."""
    sketch = index.sketches[k]
    return f"{sketch.category}/{sketch.photo_id}" if sketch.photo_id else None


def photo_positions(index: DatasetIndex) -> dict[str, int]:
    """``{photo key: position in index.photos}``."""
    return {photo_key(index, j): j for j in range(len(index.photos))}


def own_photo_positions(index: DatasetIndex, sketch_positions: Sequence[int]) -> np.ndarray:
    """For each sketch position, the position in ``index.photos`` of its own photo (int64;
    :data:`NO_PHOTO` where the index holds none)."""
    where = photo_positions(index)
    return np.array([where.get(sketch_photo_key(index, int(k)) or "", NO_PHOTO) for k in sketch_positions],
                    dtype=np.int64)


def own_gallery_columns(own_photos: np.ndarray, gallery_positions: Sequence[int]) -> np.ndarray:
    """Each query's own photo as a column of the gallery (int64, :data:`NO_PHOTO` where the
    gallery does not hold it), from :func:`own_photo_positions` and the gallery's photo positions."""
    column = {int(j): c for c, j in enumerate(gallery_positions)}
    return np.array([column.get(int(j), NO_PHOTO) for j in own_photos], dtype=np.int64)


def read_photo_split(index: DatasetIndex) -> dict[str, set[str]] | None:
    """The dataset's own photo split (``<root>/split.json``) as ``{"train": keys, "test": keys}``,
    limited to the index's categories; None when the root has no such file. A file that is not
    such a split, a photo on both sides, or an indexed photo on neither is a
    :class:`DatasetLayoutError`."""
    path = Path(index.root) / PHOTO_SPLIT_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetLayoutError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(side), list) for side in ("train", "test")):
        raise DatasetLayoutError(f"{path}: a photo split needs 'train' and 'test' lists of <category>/<photo id>")
    categories = set(index.categories)
    sides = {side: {str(key) for key in raw[side] if str(key).split("/", 1)[0] in categories}
             for side in ("train", "test")}
    both = sorted(sides["train"] & sides["test"])
    if both:
        raise DatasetLayoutError(f"{path}: {len(both)} photo(s) on both sides, e.g. {both[0]}")
    neither = sorted(set(photo_positions(index)) - sides["train"] - sides["test"])
    if neither:
        raise DatasetLayoutError(f"{path} places {len(neither)} indexed photo(s) on neither side, e.g. {neither[0]}")
    return sides


def seeded_photo_split(index: DatasetIndex, seed: int, test_fraction: float = INSTANCE_TEST_FRACTION
                       ) -> dict[str, set[str]]:
    """A photo split drawn per category (seeded by ``seed`` and the category's name, so one
    category's draw does not depend on the others): ``round(test_fraction * n)`` of each
    category's ``n`` photos test, at least one, never all."""
    by_cat: dict[str, list[str]] = defaultdict(list)
    for j in range(len(index.photos)):
        by_cat[index.photos[j].category].append(photo_key(index, j))
    sides: dict[str, set[str]] = {"train": set(), "test": set()}
    for cat, keys in sorted(by_cat.items()):
        keys = sorted(keys)
        if len(keys) < 2:
            raise ValueError(f"category {cat!r} has {len(keys)} photo; the instance protocol needs 2 or more "
                             "(one to train on, one to test)")
        n_test = min(len(keys) - 1, max(1, round(test_fraction * len(keys))))
        rng = np.random.default_rng([seed, zlib.crc32(f"instance/{cat}".encode())])
        test = set(rng.choice(keys, size=n_test, replace=False).tolist())
        sides["test"] |= test
        sides["train"] |= set(keys) - test
    return sides


def instance_photo_split(index: DatasetIndex, seed: int) -> tuple[dict[str, set[str]], str]:
    """The photo split of the instance protocol and where it comes from: the dataset's
    ``split.json`` (``"split.json"``) or, without one, :func:`seeded_photo_split` (``"seeded"``)."""
    given = read_photo_split(index)
    return (given, PHOTO_SPLIT_FILE) if given is not None else (seeded_photo_split(index, seed), "seeded")


# --------------------------------------------------------------------------- overlap of datasets


def photo_ids(index: DatasetIndex, positions: Sequence[int] | None = None) -> set[str]:
    """The photo keys of ``positions`` in ``index.photos`` (default: every photo)."""
    return {photo_key(index, j) for j in (range(len(index.photos)) if positions is None else positions)}


def overlap_photo_ids(a: DatasetIndex, b: DatasetIndex) -> list[str]:
    """The photos both datasets hold, by photo key (category and photo id), sorted: e.g. the
    250 photos of sketchy-mini that sketchy-fg10 holds too."""
    return sorted(photo_ids(a) & photo_ids(b))


def exclude_photos(index: DatasetIndex, keys: set[str]) -> DatasetIndex:
    """The same dataset without the photos whose key is in ``keys`` and without the sketches
    drawn from them (see ``data.exclude_overlap_with``)."""
    photos = [p for j, p in enumerate(index.photos) if photo_key(index, j) not in keys]
    sketches = [s for k, s in enumerate(index.sketches) if sketch_photo_key(index, k) not in keys]
    return dataclasses.replace(index, photos=photos, sketches=sketches)


# --------------------------------------------------------------------------- batches


class InstanceBatchSampler:
    """Seeded batches of training items, each made of ``batch_size / photos_per_category``
    categories with ``photos_per_category`` distinct photos each and one sketch per photo, so
    that every sketch's in-batch negatives include photos of its own category (hard negatives).

    ``item_photos[i]`` is the photo (any hashable) of item ``i`` and ``item_categories[i]``
    its category. An epoch has ``len(items) // batch_size`` batches (at most ``max_batches``),
    drawn from ``(seed, epoch)`` alone. Under DDP each rank takes its equal shard of every
    global batch, as :class:`semi3lib.engine.train.GlobalBatchSampler` does.
    """

    def __init__(self, item_photos: Sequence, item_categories: Sequence, batch_size: int,
                 photos_per_category: int, seed: int, rank: int = 0, world: int = 1,
                 max_batches: int | None = None) -> None:
        if batch_size % photos_per_category:
            raise ValueError(f"train.batch_size={batch_size} is not a multiple of "
                             f"train.instance_photos_per_category={photos_per_category}")
        if batch_size % world:
            raise ValueError(f"train.batch_size={batch_size} is not divisible by {world} processes")
        self.items_of: dict = defaultdict(list)  # photo -> its items
        photos_of: dict = defaultdict(set)  # category -> its photos
        for i, (photo, cat) in enumerate(zip(item_photos, item_categories)):
            self.items_of[photo].append(i)
            photos_of[cat].add(photo)
        self.photos_of = {cat: sorted(photos, key=str) for cat, photos in sorted(photos_of.items(), key=str)}
        self.eligible = [cat for cat, photos in self.photos_of.items() if len(photos) >= photos_per_category]
        self.per_batch = batch_size // photos_per_category
        if len(self.eligible) < self.per_batch:
            raise ValueError(f"a batch of {batch_size} with {photos_per_category} photos per category needs "
                             f"{self.per_batch} categories with {photos_per_category}+ training photos; "
                             f"{len(self.eligible)} have them")
        n_items = len(item_photos)
        if n_items < batch_size:
            raise ValueError(f"only {n_items} training sketches for train.batch_size={batch_size}")
        self.n_items, self.batch_size, self.photos_per_category = n_items, batch_size, photos_per_category
        self.seed, self.rank, self.world, self.max_batches = seed, rank, world, max_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        full = self.n_items // self.batch_size
        return min(full, self.max_batches) if self.max_batches else full

    def global_batches(self) -> Iterator[list[int]]:
        """The epoch's whole batches (every rank's shards together)."""
        rng = np.random.default_rng([self.seed, self.epoch, zlib.crc32(b"instance-batches")])
        for _ in range(len(self)):
            batch = []
            for c in rng.choice(len(self.eligible), size=self.per_batch, replace=False):
                photos = self.photos_of[self.eligible[c]]
                for p in rng.choice(len(photos), size=self.photos_per_category, replace=False):
                    items = self.items_of[photos[p]]
                    batch.append(items[rng.integers(len(items))])
            yield batch

    def __iter__(self) -> Iterator[list[int]]:
        shard = self.batch_size // self.world
        for batch in self.global_batches():
            yield batch[self.rank * shard:(self.rank + 1) * shard]





def training_photo_ids(index: DatasetIndex, train_photos: Sequence[int], train_sketches: Sequence[int]) -> set[str]:
    """Every photo a run trained on: its training photos and the photos its training sketches
    were drawn from (a sketch of a photo teaches that photo too)."""
    drawn = {sketch_photo_key(index, int(k)) for k in train_sketches}
    return photo_ids(index, train_photos) | {key for key in drawn if key}


def test_photo_ids(index: DatasetIndex, test_photos: Sequence[int], query: Sequence[int]) -> set[str]:
    """Every photo a run tests on: its test photos and its queries' own photos."""
    drawn = {sketch_photo_key(index, int(k)) for k in query}
    return photo_ids(index, test_photos) | {key for key in drawn if key}


__all__ = ["INSTANCE_TEST_FRACTION", "InstanceBatchSampler", "NO_PHOTO", "PHOTO_SPLIT_FILE", "exclude_photos",
           "instance_photo_split", "overlap_photo_ids", "own_gallery_columns", "own_photo_positions", "photo_ids",
           "photo_key", "photo_positions", "read_photo_split", "seeded_photo_split", "sketch_photo_key",
           "test_photo_ids", "training_photo_ids"]
