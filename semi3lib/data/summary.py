"""What a dataset holds, for reading rather than training: counts per category and split,
sketches beside their photos, and how the Sketchy sketch variants use the canvas."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from semi3lib.data.images import load_image
from semi3lib.data.layouts import DatasetIndex, PhotoRecord, SketchRecord
from semi3lib.data.splits import Split

VARIANT_NAMES = {
    "tx_000000000000": "whole canvas",
    "tx_000100000000": "bounding box",
}


def variant_label(variant: str) -> str:
    """``tx_000000000000 (whole canvas)`` for a known Sketchy variant, else the name as is."""
    return f"{variant} ({VARIANT_NAMES[variant]})" if variant in VARIANT_NAMES else variant


def category_table(index: DatasetIndex, split: Split) -> pd.DataFrame:
    """Per category: photos, sketches per variant, query sketches and training sketches."""
    rows: dict[str, dict[str, int]] = {c: {} for c in index.categories}
    for p in index.photos:
        rows[p.category]["photos"] = rows[p.category].get("photos", 0) + 1
    for s in index.sketches:
        key = f"sketches {VARIANT_NAMES.get(s.variant, s.variant)}"
        rows[s.category][key] = rows[s.category].get(key, 0) + 1
    for name, positions in (("query sketches", split.query), ("train sketches", split.train_sketches),
                            ("val sketches", split.val)):
        for i in positions:
            cat = index.sketches[i].category
            rows[cat][name] = rows[cat].get(name, 0) + 1
    table = pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)
    table.index.name = "category"
    return table.loc[:, (table != 0).any(axis=0)]


def sketch_photo_examples(index: DatasetIndex, categories: Sequence[str], per_category: int = 1,
                          seed: int = 0) -> list[tuple[SketchRecord, PhotoRecord]]:
    """``(sketch, photo)`` record pairs where the sketch was drawn from that very photo."""
    by_id = {(p.category, p.path.stem): p for p in index.photos}
    rng = np.random.default_rng(seed)
    pairs = []
    for cat in categories:
        cands = [s for s in index.sketches if s.category == cat and s.variant == index.query_variant
                 and (cat, s.photo_id) in by_id]
        for k in rng.permutation(len(cands))[:per_category]:
            pairs.append((cands[k], by_id[(cat, cands[k].photo_id)]))
    return pairs


def variant_pairs(index: DatasetIndex, n: int, seed: int = 0) -> list[tuple[SketchRecord, SketchRecord]]:
    """Up to ``n`` drawings present in both sketch variants: ``(whole canvas, bounding box)``
    records, from distinct categories where possible."""
    variants = index.sketch_variants
    if len(variants) < 2:
        return []
    first = {s.drawing_id: s for s in index.sketches if s.variant == variants[0]}
    both = [(first[s.drawing_id], s) for s in index.sketches if s.variant == variants[1] and s.drawing_id in first]
    rng = np.random.default_rng(seed)
    picked, seen = [], set()
    for k in rng.permutation(len(both)):
        cat = both[k][0].category
        if cat not in seen:
            picked.append(both[k])
            seen.add(cat)
        if len(picked) == n:
            break
    return picked


def sketch_extent(path: str | Path) -> dict[str, float]:
    """Ink fraction (share of pixels darker than 128) and the area of the strokes' bounding
    box as a fraction of the canvas."""
    ink = np.asarray(load_image(path, "L")) < 128
    if not ink.any():
        return {"ink": 0.0, "bbox_area": 0.0}
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    area = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1) / ink.size
    return {"ink": float(ink.mean()), "bbox_area": float(area)}


def variant_extent_table(index: DatasetIndex, max_per_variant: int | None = None, seed: int = 0) -> pd.DataFrame:
    """:func:`sketch_extent` of (a seeded sample of) the sketches of every variant: one row
    per sketch with ``variant`` (its :func:`variant_label`), ``ink`` and ``bbox_area``."""
    rng = np.random.default_rng(seed)
    rows = []
    for variant in index.sketch_variants:
        sketches = [s for s in index.sketches if s.variant == variant]
        if max_per_variant is not None and len(sketches) > max_per_variant:
            sketches = [sketches[i] for i in sorted(rng.choice(len(sketches), max_per_variant, replace=False))]
        rows += [{"variant": variant_label(variant), **sketch_extent(s.path)} for s in sketches]
    return pd.DataFrame(rows)
