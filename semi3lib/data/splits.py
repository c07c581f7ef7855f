"""Train / query / gallery splits, seeded and saved to JSON so every run compares like with like.

Category-level protocol (the one category-level SBIR papers share): a fixed number of query
sketches per category (50 Sketchy, 10 TU-Berlin Extension, 10 sketchy-mini), drawn from the
query variant (Sketchy's ``tx_000000000000``); every other sketch trains; the gallery and the
training photos are *all* photos. A drawing can exist in several Sketchy variants (same file
name, different scaling): renderings of a query (or validation) drawing in other variants are
left out of everything, so no query drawing is ever seen in training.

Zero-shot protocol: a set of unseen categories, either seeded at random (25 of 125 Sketchy, 30
of 250 TU-Berlin, 25 for sketchy-mini) or a named standard set (:data:`UNSEEN_CATEGORY_SETS`:
``yelamarthi``, Sketchy's 21 categories that are not ImageNet-1k classes); queries are the unseen
categories' query-variant sketches, the gallery is their photos (or, harder, every photo), and
training uses the seen categories only.

Instance-level protocol (find *this* photo; see :mod:`semi3lib.data.instance`): the photos are
split into train and test (the dataset's ``split.json``, else a seeded split), a sketch follows
its photo; queries are the test photos' query-variant sketches, the gallery their photos (or,
harder, every photo), and training uses the training photos and their sketches only.

A split stores integer positions into :class:`~semi3lib.data.layouts.DatasetIndex` lists plus
a fingerprint of the index's relative paths (extensions ignored, so a packed copy matches);
:func:`load_split` with an index refuses a split made for different files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from semi3lib.data.instance import instance_photo_split, photo_key, sketch_photo_key
from semi3lib.data.layouts import DatasetIndex

PROTOCOLS = ("category", "zeroshot", "instance")
QUERIES_PER_CATEGORY = {"sketchy": 50, "tuberlin-ext": 10, "sketchy-mini": 10}
UNSEEN_CATEGORIES = {"sketchy": 25, "tuberlin-ext": 30, "sketchy-mini": 25}
# Named unseen-category sets. "yelamarthi": the Sketchy zero-shot split of Yelamarthi et al.
# (ECCV 2018), the 21 Sketchy categories that are not ImageNet-1k classes, so that an
# ImageNet-pretrained backbone has not seen them either. Names as Sketchy's folders spell them.
UNSEEN_CATEGORY_SETS = {
    "yelamarthi": ("bat", "cabin", "cow", "dolphin", "door", "giraffe", "helicopter", "mouse", "pear",
                   "raccoon", "rhinoceros", "saw", "scissors", "seagull", "skyscraper", "songbird", "sword",
                   "tree", "wheelchair", "windmill", "window"),
}
ZEROSHOT_SPLITS = ("random", *UNSEEN_CATEGORY_SETS)  # data.zeroshot_split
ZEROSHOT_GALLERIES = ("unseen", "all")
INSTANCE_GALLERIES = ("test", "all")  # data.instance_gallery
SPLIT_FORMAT = 1


@dataclass
class Split:
    """Positions into ``index.sketches`` (query, train_sketches, val) and ``index.photos``
    (gallery, train_photos), all sorted."""

    protocol: str
    seed: int
    query: list[int]
    train_sketches: list[int]
    val: list[int]
    gallery: list[int]
    train_photos: list[int]
    categories_seen: list[str]
    categories_unseen: list[str] = field(default_factory=list)
    dataset: str = ""
    queries_per_category: int | None = None
    fingerprint: str = ""
    # instance protocol only: the test photos (positions into index.photos) and where the photo
    # split came from ("split.json": the dataset's own; "seeded")
    test_photos: list[int] = field(default_factory=list)
    photo_split: str = ""

    def counts(self) -> dict[str, int]:
        return {
            "query": len(self.query),
            "train": len(self.train_sketches),
            "val": len(self.val),
            "gallery": len(self.gallery),
            "train_photos": len(self.train_photos),
            "categories_seen": len(self.categories_seen),
            "categories_unseen": len(self.categories_unseen),
            **({"test_photos": len(self.test_photos)} if self.protocol == "instance" else {}),
        }


def index_fingerprint(index: DatasetIndex) -> str:
    """sha256 over the ordered relative paths (without extension) of photos and sketches."""
    h = hashlib.sha256()
    for kind, records in (("photo", index.photos), ("sketch", index.sketches)):
        h.update(kind.encode())
        for r in records:
            h.update(b"\0" + os.path.splitext(index.relative(r.path))[0].encode())
    return h.hexdigest()


def _rng(seed: int, *keys: str) -> np.random.Generator:
    # Seeded per category name, so a category's draw does not depend on the other categories.
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def _carve(rng: np.random.Generator, candidates: list[int], n: int, what: str, category: str) -> list[int]:
    if n > len(candidates):
        raise ValueError(
            f"category {category!r} has {len(candidates)} candidate sketches for {n} {what} per category; "
            f"lower the number (queries_per_category / val_sketches_per_category)"
        )
    return sorted(rng.choice(candidates, size=n, replace=False).tolist()) if n else []


def make_split(
    index: DatasetIndex,
    protocol: str = "category",
    queries_per_category: int | None = None,
    seed: int = 0,
    val_sketches_per_category: int = 0,
    unseen_categories: int | str | Sequence[str] | None = None,
    zeroshot_gallery: str = "unseen",
    instance_gallery: str = "test",
) -> Split:
    """Build a split of ``index``; same arguments -> same split.

    ``queries_per_category`` (category protocol) defaults to the dataset's standard;
    ``unseen_categories`` (zero-shot) is a count (seeded choice), the name of a set in
    :data:`UNSEEN_CATEGORY_SETS`, or explicit names; ``zeroshot_gallery`` is ``unseen`` (their
    photos) or ``all`` (every photo); ``val_sketches_per_category`` carves validation drawings
    out of the training sketches. ``instance_gallery`` (instance protocol) is ``test`` (the test
    photos) or ``all`` (every photo).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown split protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if protocol == "instance":
        if val_sketches_per_category:
            raise ValueError("the instance protocol has no validation sketches (their photos would be training "
                             "photos); set data.val_sketches_per_category=0")
        return _instance_split(index, seed, instance_gallery)
    if zeroshot_gallery not in ZEROSHOT_GALLERIES:
        raise ValueError(f"unknown zero-shot gallery {zeroshot_gallery!r}; valid: {', '.join(ZEROSHOT_GALLERIES)}")
    if isinstance(unseen_categories, str):
        if unseen_categories not in UNSEEN_CATEGORY_SETS:
            raise ValueError(f"unknown unseen-category set {unseen_categories!r}; valid: "
                             f"{', '.join(UNSEEN_CATEGORY_SETS)}, or a count for a seeded random set")
        named = UNSEEN_CATEGORY_SETS[unseen_categories]
        missing = sorted(set(named) - set(index.categories))
        if missing:
            raise ValueError(f"the {unseen_categories!r} unseen-category set names {len(missing)} categories that "
                             f"{index.name!r} at {index.root} does not have: {', '.join(missing)}")
        unseen_categories = list(named)
    by_cat: dict[str, list[int]] = defaultdict(list)  # query-variant sketches per category
    for i, s in enumerate(index.sketches):
        if s.variant == index.query_variant:
            by_cat[s.category].append(i)

    if protocol == "category":
        if queries_per_category is None:
            queries_per_category = QUERIES_PER_CATEGORY.get(index.name, 10)
        seen, unseen = list(index.categories), []
    else:
        if unseen_categories is None:
            unseen_categories = UNSEEN_CATEGORIES.get(index.name, 25)
        if isinstance(unseen_categories, int):
            if not 0 < unseen_categories < len(index.categories):
                raise ValueError(
                    f"zero-shot needs 0 < unseen categories < {len(index.categories)}, got {unseen_categories}"
                )
            picked = _rng(seed, "zeroshot").choice(len(index.categories), unseen_categories, replace=False)
            unseen = sorted(index.categories[i] for i in picked)
        else:
            unknown = sorted(set(unseen_categories) - set(index.categories))
            if unknown:
                raise ValueError(f"unseen categories not in the dataset: {', '.join(unknown)}")
            unseen = sorted(set(unseen_categories))
        seen = [c for c in index.categories if c not in set(unseen)]
        queries_per_category = None

    query: list[int] = []
    held_out: list[int] = []  # query/val drawings: all their renderings stay out of training
    val: list[int] = []
    if protocol == "category":
        for cat in index.categories:
            picked = _carve(_rng(seed, "query", cat), by_cat[cat], queries_per_category, "queries", cat)
            query += picked
    else:
        unseen_set = set(unseen)
        query = [i for i, s in enumerate(index.sketches)
                 if s.category in unseen_set and s.variant == index.query_variant]
    held_out += query
    if val_sketches_per_category:
        taken = set(query)
        for cat in seen:
            candidates = [i for i in by_cat[cat] if i not in taken]
            val += _carve(_rng(seed, "val", cat), candidates, val_sketches_per_category, "validation sketches", cat)
        held_out += val

    held_drawings = {index.sketches[i].drawing_id for i in held_out}
    seen_set = set(seen)
    train = [i for i, s in enumerate(index.sketches)
             if s.category in seen_set and s.drawing_id not in held_drawings]
    if protocol == "category":
        gallery = list(range(len(index.photos)))
        train_photos = list(gallery)
    else:
        unseen_set = set(unseen)
        gallery = [i for i, p in enumerate(index.photos)
                   if zeroshot_gallery == "all" or p.category in unseen_set]
        train_photos = [i for i, p in enumerate(index.photos) if p.category in seen_set]
    return Split(
        protocol=protocol,
        seed=seed,
        query=sorted(query),
        train_sketches=train,
        val=sorted(val),
        gallery=gallery,
        train_photos=train_photos,
        categories_seen=seen,
        categories_unseen=unseen,
        dataset=index.name,
        queries_per_category=queries_per_category,
        fingerprint=index_fingerprint(index),
    )


def _instance_split(index: DatasetIndex, seed: int, instance_gallery: str) -> Split:
    """The instance protocol's split (see the module docstring). A sketch whose photo is not
    in the index (its name does not say which, or the photo is missing) is left out."""
    if instance_gallery not in INSTANCE_GALLERIES:
        raise ValueError(f"unknown instance gallery {instance_gallery!r}; valid: {', '.join(INSTANCE_GALLERIES)}")
    sides, source = instance_photo_split(index, seed)
    side_of = {key: side for side, keys in sides.items() for key in keys}
    train_photos = [j for j in range(len(index.photos)) if side_of.get(photo_key(index, j)) == "train"]
    test_photos = [j for j in range(len(index.photos)) if side_of.get(photo_key(index, j)) == "test"]
    indexed = {photo_key(index, j) for j in range(len(index.photos))}
    query, train = [], []
    for k, sketch in enumerate(index.sketches):
        key = sketch_photo_key(index, k)
        if key not in indexed:
            continue
        if side_of[key] == "train":
            train.append(k)
        elif sketch.variant == index.query_variant:
            query.append(k)
    split = Split(protocol="instance", seed=seed, query=query, train_sketches=train, val=[], gallery=[],
                  train_photos=train_photos, categories_seen=list(index.categories), dataset=index.name,
                  fingerprint=index_fingerprint(index), test_photos=test_photos, photo_split=source)
    return with_instance_gallery(split, instance_gallery)


def with_instance_gallery(split: Split, instance_gallery: str) -> Split:
    """An instance split with its gallery set to its test photos (``test``) or to every photo,
    training photos too (``all``); the queries and the training data unchanged. A split of
    another protocol is returned as it is."""
    if split.protocol != "instance":
        return split
    if instance_gallery not in INSTANCE_GALLERIES:
        raise ValueError(f"unknown instance gallery {instance_gallery!r}; valid: {', '.join(INSTANCE_GALLERIES)}")
    gallery = sorted(split.test_photos + split.train_photos) if instance_gallery == "all" else list(split.test_photos)
    return dataclasses.replace(split, gallery=gallery)


def split_from_config(index: DatasetIndex, data_cfg: Any) -> Split:
    """The split a :class:`semi3lib.config.DataConfig` asks for."""
    return make_split(
        index,
        protocol=data_cfg.protocol,
        queries_per_category=data_cfg.queries_per_category,
        seed=data_cfg.split_seed,
        val_sketches_per_category=data_cfg.val_sketches_per_category,
        unseen_categories=unseen_categories_of(data_cfg),
        zeroshot_gallery=data_cfg.zeroshot_gallery,
        instance_gallery=getattr(data_cfg, "instance_gallery", "test"),
    )


def unseen_categories_of(data_cfg: Any) -> int | str | None:
    """A DataConfig's unseen categories: a count for the seeded random set, or a set's name."""
    if data_cfg.zeroshot_split == "random":
        return data_cfg.unseen_categories
    if data_cfg.unseen_categories is not None:
        raise ValueError(f"data.unseen_categories={data_cfg.unseen_categories} applies to the random zero-shot "
                         f"split only, not to data.zeroshot_split={data_cfg.zeroshot_split}")
    return data_cfg.zeroshot_split


def with_gallery(index: DatasetIndex, split: Split, zeroshot_gallery: str) -> Split:
    """A zero-shot split with its gallery replaced: the unseen categories' photos, or every photo
    (the queries and the training data unchanged). A category split is returned as it is."""
    if split.protocol != "zeroshot":
        return split
    if zeroshot_gallery not in ZEROSHOT_GALLERIES:
        raise ValueError(f"unknown zero-shot gallery {zeroshot_gallery!r}; valid: {', '.join(ZEROSHOT_GALLERIES)}")
    unseen = set(split.categories_unseen)
    gallery = [i for i, p in enumerate(index.photos) if zeroshot_gallery == "all" or p.category in unseen]
    return dataclasses.replace(split, gallery=gallery)


def save_split(split: Split, path: str | os.PathLike) -> Path:
    """Write a split as JSON (``format`` records the file version)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = asdict(split)
    if split.protocol != "instance":  # the instance fields only where they mean something
        del fields["test_photos"], fields["photo_split"]
    path.write_text(json.dumps({"format": SPLIT_FORMAT, **fields}))
    return path


def load_split(path: str | os.PathLike, index: DatasetIndex | None = None) -> Split:
    """Read a split; with ``index``, check it was made for the same files (else ValueError)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"split file {path} is not valid JSON: {err}") from None
    if data.pop("format", None) != SPLIT_FORMAT:
        raise ValueError(f"split file {path} has an unsupported format (expected {SPLIT_FORMAT})")
    split = Split(**data)
    if index is not None and split.fingerprint != index_fingerprint(index):
        raise ValueError(
            f"split file {path} was made for a different file list than {index.root} "
            f"(dataset {split.dataset!r}); rebuild it with make_split"
        )
    return split
