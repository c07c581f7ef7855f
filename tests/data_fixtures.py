"""Builders for tiny datasets in the official layouts, written into temporary folders at test
time (no image files are committed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def write_photo(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    """An RGB JPEG with a few filled shapes, so edge detectors find something; asymmetric,
    so a horizontal flip is detectable."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(150, 255, 3)))
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(3):
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x1, y1 = x0 + int(rng.integers(w // 6, w // 2)), y0 + int(rng.integers(h // 6, h // 2))
        draw.rectangle((x0, y0, x1, y1), fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
    draw.rectangle((0, 0, w // 8, h - 1), fill=(20, 20, 20))  # a left-side bar: flips show
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=90)
    return path


def write_sketch(path: Path, seed: int, size: tuple[int, int] = (64, 64)) -> Path:
    """An 8-bit greyscale PNG: dark strokes on white."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(4):
        pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(2)]
        draw.line(pts, fill=0, width=2)
    draw.line([(2, 2), (2, h - 3)], fill=0, width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG")
    return path


def truncate(path: Path, keep: float = 0.4) -> Path:
    """Cut a file short, as an interrupted download would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


SKETCHY_CATEGORIES = ("airplane", "car_(sedan)", "hot-air_balloon")


def make_sketchy(
    root: Path,
    categories: tuple[str, ...] = SKETCHY_CATEGORIES,
    photos_per_category: int = 3,
    sketches_per_photo: int = 2,
    variants: tuple[str, ...] = ("tx_000000000000", "tx_000100000000"),
    extended: str | None = "EXTEND_image_sketchy",
    extended_extra: int = 2,
    photo_size: tuple[int, int] = (64, 48),
) -> Path:
    """Sketchy's layout: photo/tx_000000000000/<cat>/<id>.jpg, sketch/<variant>/<cat>/<id>-<k>.png
    (the second variant renders only the first drawing of each photo, like Sketchy's
    bounding-box variant), plus an extended-photo folder whose category folders are spelled
    with underscores instead of hyphens/parentheses and which repeats one Sketchy photo."""
    seed = 0
    for c, cat in enumerate(categories):
        for p in range(photos_per_category):
            pid = f"n{c:08d}_{p}"
            seed += 1
            write_photo(root / "photo" / "tx_000000000000" / cat / f"{pid}.jpg", seed, photo_size)
            for k in range(1, sketches_per_photo + 1):
                for v, variant in enumerate(variants):
                    if v > 0 and k > 1:
                        continue
                    seed += 1
                    write_sketch(root / "sketch" / variant / cat / f"{pid}-{k}.png", seed)
        if extended:
            ext_cat = cat.replace("-", "_").replace("(", "").replace(")", "")
            for e in range(extended_extra):
                seed += 1
                write_photo(root / extended / ext_cat / f"ext{c}_{e}.jpg", seed, photo_size)
            seed += 1
            write_photo(root / extended / ext_cat / f"n{c:08d}_0.jpg", seed, photo_size)  # a duplicate
    return root


TUBERLIN_SKETCH_CATEGORIES = ("alarm clock", "car (sedan)", "satellite dish", "teddy-bear")
# Photo-folder spellings of the same categories: one needs only normalisation each, one is
# a misspelling that needs the explicit name map.
TUBERLIN_PHOTO_FOLDERS = {
    "alarm clock": "alarm_clock",
    "car (sedan)": "car_sedan",
    "satellite dish": "satelite_dish",
    "teddy-bear": "Teddy_Bear",
}
TUBERLIN_MISSPELLING = {"satelite_dish": "satellite dish"}


def make_tuberlin(root: Path, sketches_per_category: int = 4, photos_per_category: int = 3,
                  photo_dir: str = "ImageResized") -> Path:
    """TU-Berlin Extension layout: png/<cat>/<n>.png and ImageResized/<cat>/<name>.JPEG."""
    seed = 100
    for c, cat in enumerate(TUBERLIN_SKETCH_CATEGORIES):
        for k in range(sketches_per_category):
            seed += 1
            write_sketch(root / "png" / cat / f"{c * 80 + k + 1}.png", seed)
        for p in range(photos_per_category):
            seed += 1
            write_photo(root / photo_dir / TUBERLIN_PHOTO_FOLDERS[cat] / f"img_{c}_{p}.JPEG", seed)
    (root / "png" / "filelist.txt").write_text("not a category\n")
    return root


def make_instance_dataset(root: Path, categories: tuple[str, ...] = ("apple", "cup", "shoe"),
                          photos_per_category: int = 6, sketches_per_photo: int = 2,
                          test_per_category: int | None = 2, first_photo: int = 0) -> Path:
    """An instance-level dataset in Sketchy's layout (one sketch variant; sketch ``<id>-<k>.png``
    drawn from photo ``<id>.jpg``), as sketchy-fg10: with ``test_per_category``, a ``split.json``
    whose test side is the last that many photos of each category (None: no split file).
    Photo ids are ``<category>_<n>`` from ``first_photo`` on, so two datasets built with
    overlapping ranges share those photos, as sketchy-mini and sketchy-fg10 do."""
    import json

    split: dict[str, list[str]] = {"train": [], "test": []}
    for c, cat in enumerate(categories):
        for p in range(first_photo, first_photo + photos_per_category):
            pid = f"{cat}_{p}"
            seed = 1000 * (c + 1) + 10 * p  # the same photo id draws the same images in every dataset
            write_photo(root / "photo" / "tx_000000000000" / cat / f"{pid}.jpg", seed)
            for k in range(1, sketches_per_photo + 1):
                write_sketch(root / "sketch" / "tx_000000000000" / cat / f"{pid}-{k}.png", seed + k)
            last = first_photo + photos_per_category - (test_per_category or 0)
            split["test" if p >= last else "train"].append(f"{cat}/{pid}")
    if test_per_category is not None:
        (root / "split.json").write_text(json.dumps(split))
    return root
