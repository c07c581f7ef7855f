"""Assemble what one experiment needs from its config: the dataset index, the split (read
from or written to a split file, so every run compares like with like) and the datasets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from semi3lib.config import DataConfig, ExperimentConfig
from semi3lib.data.datasets import GalleryPhotos, InstanceTriplets, QuerySketches, TrainTriplets
from semi3lib.data.instance import exclude_photos, photo_ids
from semi3lib.data.layouts import DatasetIndex, read_dataset
from semi3lib.data.quickdraw import QuickDrawError, load_quickdraw, parse_classes
from semi3lib.data.splits import Split, load_split, save_split, split_from_config, with_instance_gallery


@dataclass
class ExperimentData:
    index: DatasetIndex
    split: Split

    @property
    def num_classes(self) -> int:
        return len(self.index.categories)


def load_experiment_data(data_cfg: DataConfig, split_file: str | Path | None = None) -> ExperimentData:
    """Read the dataset and its split. An existing ``split_file`` is reused as is; otherwise
    the split is made from the config's seed and written there (when a path is given). An
    instance split's gallery is the config's ``instance_gallery`` (test photos or all)."""
    index = exclude_overlap(read_dataset(data_cfg.dataset, root=data_cfg.root), data_cfg)
    if data_cfg.max_categories is not None:
        index = restrict_categories(index, data_cfg.max_categories)
    if split_file is not None and Path(split_file).is_file():
        split = with_instance_gallery(load_split(split_file, index), data_cfg.instance_gallery)
    else:
        split = split_from_config(index, data_cfg)
        if split_file is not None:
            save_split(split, split_file)
    return ExperimentData(index=index, split=split)


def exclude_overlap(index: DatasetIndex, data_cfg: DataConfig) -> DatasetIndex:
    """``index`` without the photos (and their sketches) that the dataset named by
    ``data_cfg.exclude_overlap_with`` also holds; ``index`` itself when it names none."""
    other = data_cfg.exclude_overlap_with
    if other is None:
        return index
    if other == index.name:
        raise ValueError(f"data.exclude_overlap_with={other} is the dataset itself: it would leave nothing")
    return exclude_photos(index, photo_ids(read_dataset(other)))


def restrict_categories(index: DatasetIndex, n: int) -> DatasetIndex:
    """The same dataset with only its first ``n`` categories (sorted order): smoke runs."""
    if n < 2:
        raise ValueError(f"max_categories must be at least 2, got {n}")
    keep = set(index.categories[:n])
    return dataclasses.replace(
        index,
        categories=[c for c in index.categories if c in keep],
        photos=[p for p in index.photos if p.category in keep],
        sketches=[s for s in index.sketches if s.category in keep],
    )


def restrict_split(data: ExperimentData, categories: Sequence[int]) -> ExperimentData:
    """The same experiment with its query and gallery cut to some category codes. Unlike
    :func:`restrict_categories`, the index is kept whole, so label codes (a trained model's
    classes) and the split's positions (a checkpoint's ``split.json``) stay valid."""
    keep = {data.index.categories[c] for c in categories}
    split = dataclasses.replace(
        data.split,
        query=[i for i in data.split.query if data.index.sketches[i].category in keep],
        gallery=[j for j in data.split.gallery if data.index.photos[j].category in keep],
    )
    return dataclasses.replace(data, split=split)


def edge_cache_dir(data_cfg: DataConfig) -> str:
    return data_cfg.cache_dir or str(Path("cache") / "edges")


def train_dataset(data: ExperimentData, cfg: DataConfig, seed: int) -> TrainTriplets | InstanceTriplets:
    """The training items of the split's protocol: each sketch with its own photo and edgemap
    (instance protocol), or with a photo of its category or of another (the others)."""
    if data.split.protocol == "instance":
        return InstanceTriplets(data.index, data.split, image_size=cfg.image_size, edge_method=cfg.edge_method,
                                hflip=cfg.hflip, cache_dir=edge_cache_dir(cfg), seed=seed, strokes=cfg.strokes,
                                doodle_augment=cfg.doodle_augment)
    return TrainTriplets(
        data.index,
        data.split,
        image_size=cfg.image_size,
        edge_method=cfg.edge_method,
        hflip=cfg.hflip,
        positive_fraction=cfg.positive_fraction,
        cache_dir=edge_cache_dir(cfg),
        seed=seed,
        strokes=cfg.strokes,
        doodle_augment=cfg.doodle_augment,
        doodles=adapt_doodles(data, cfg),
    )


def adapt_doodles(data: ExperimentData, cfg: DataConfig) -> list[tuple[np.ndarray, int]]:
    """The ``adapt`` doodles of ``cfg.doodle_adapt_classes``, each with the label of its Sketchy
    category (which must be among the experiment's training categories)."""
    if not cfg.doodle_adapt_classes.strip():
        return []
    quickdraw = load_quickdraw(cfg.doodle_root)
    out: list[tuple[np.ndarray, int]] = []
    trained = {data.index.photos[j].category for j in data.split.train_photos}
    for cls in parse_classes(cfg.doodle_adapt_classes, quickdraw.classes):
        category = quickdraw.categories[cls]
        if category not in trained:
            raise QuickDrawError(f"Quick, Draw! class {cls!r} is Sketchy's {category!r}, which has no training "
                                 "photos in this experiment")
        label = data.index.label_of(category)
        out.extend((bitmap, label) for bitmap in quickdraw.bitmaps(cls, "adapt", cfg.doodle_adapt_per_class))
    return out


def query_dataset(data: ExperimentData, cfg: DataConfig, which: str = "query") -> QuerySketches:
    """Sketches of the query split (``which="query"``) or the validation split (``"val"``)."""
    if which not in ("query", "val"):
        raise ValueError(f"unknown split {which!r}: use 'query' or 'val'")
    indices = data.split.query if which == "query" else data.split.val
    return QuerySketches(data.index, indices, image_size=cfg.image_size, strokes=cfg.strokes)


def gallery_dataset(data: ExperimentData, cfg: DataConfig) -> GalleryPhotos:
    return GalleryPhotos(
        data.index,
        data.split.gallery,
        image_size=cfg.image_size,
        edge_method=cfg.edge_method,
        cache_dir=edge_cache_dir(cfg),
    )


def with_overrides(cfg: ExperimentConfig, **sections: dict) -> ExperimentConfig:
    """A copy of ``cfg`` with some fields replaced, e.g. ``with_overrides(cfg, train={"epochs": 1})``."""
    replaced = {name: dataclasses.replace(getattr(cfg, name), **values) for name, values in sections.items()}
    return dataclasses.replace(cfg, **replaced)
