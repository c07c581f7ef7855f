"""Datasets, splits and image loading. The torch Datasets live in
:mod:`semi3lib.data.datasets` (imported on demand, so the CLI starts without torch)."""

from semi3lib.data.images import UnreadableImageError, load_image
from semi3lib.data.layouts import (
    DATASET_NAMES,
    DatasetIndex,
    DatasetLayoutError,
    PhotoRecord,
    SketchRecord,
    SkippedFile,
    read_dataset,
)
from semi3lib.data.splits import Split, load_split, make_split, save_split, split_from_config

__all__ = [
    "DATASET_NAMES",
    "DatasetIndex",
    "DatasetLayoutError",
    "PhotoRecord",
    "SketchRecord",
    "SkippedFile",
    "Split",
    "UnreadableImageError",
    "load_image",
    "load_split",
    "make_split",
    "read_dataset",
    "save_split",
    "split_from_config",
]
