"""Readers for the official dataset layouts: Sketchy (+ extended photos), TU-Berlin Extension,
and sketchy-mini. Each returns a :class:`DatasetIndex`: sorted file lists with category labels,
built from directory listings only (no decoding), so indexing the full Sketchy takes seconds.

Layouts
-------
Sketchy (Sangkloy et al. 2016, the ``256x256/`` folder of the official download)::

    <root>/photo/tx_000000000000/<category>/<imagenet_id>.jpg
    <root>/sketch/<variant>/<category>/<imagenet_id>-<k>.png      variant in SKETCHY_VARIANTS
    <root>/EXTEND_image_sketchy/<category>/*.jpg                    optional, see below

A root that *contains* ``256x256/`` or ``rendered_256x256/256x256/`` is accepted too.

Extended photos: the 60,502 extra photos of Liu et al. (Deep Sketch Hashing, CVPR 2017) that
bring Sketchy to the 73,002-photo gallery of the category-level SBIR benchmarks. The DSH
release unpacks to ``EXTEND_image_sketchy/<category>/``; zero-shot SBIR code bases (SEM-PCYC,
Doodle2Search, ...) rename it ``extended_photo/<category>/``. Both names are looked for in the
root (and, when the root was found by descending into ``256x256/``, in the folder given). When
present, the gallery is the union of the extended folder and ``photo/tx_000000000000``,
de-duplicated by (category, file stem), keeping Sketchy's own file, so it is 73,002 photos
whether the folder holds all photos or only the extras. Category folder names that differ only
by case, spaces/underscores/hyphens or parentheses (``hot-air_balloon`` / ``hot_air_balloon``)
are matched.

TU-Berlin Extension (Eitz et al. 2012 sketches + Zhang et al. 2016 / DSH photos)::

    <root>/png/<category>/*.png                   TU-Berlin's 250-category release
    <root>/ImageResized/<category>/*              the extension photos (DSH release); also
                                                  images/, photo/ or photos/

Sketch and photo folder spellings are matched after normalisation (see
:func:`normalise_category`), then through an explicit override map (built-in
:data:`TUBERLIN_NAME_OVERRIDES`, a ``category_map.json`` in the root, and the
``category_map`` argument, later ones winning). Anything left unmatched is an error that lists
it, with the closest names as hints.

sketchy-mini: Sketchy's layout with ``tx_000000000000`` photos and two sketch variants.

sketchy-fg10: Sketchy's layout too (one sketch variant), every sketch of 100 photos in each of
10 categories, plus the source's photo split in ``<root>/split.json`` (see
:mod:`semi3lib.data.instance`): the data of the instance-level protocol.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from semi3lib.data.images import PHOTO_EXTENSIONS, SKETCH_EXTENSIONS, UnreadableImageError, load_image
from semi3lib.paths import find_dataset_root

DATASET_NAMES = ("sketchy", "sketchy-mini", "tuberlin-ext", "sketchy-fg10")

SKETCHY_VARIANTS = (
    "tx_000000000000",
    "tx_000100000000",
    "tx_000000000010",
    "tx_000000000110",
    "tx_000000001010",
    "tx_000000001110",
)
# Sketchy's whole-canvas variant: the one that query sketches are drawn from.
SKETCHY_QUERY_VARIANT = "tx_000000000000"
SKETCHY_PHOTO_VARIANT = "tx_000000000000"
SKETCHY_EXTENDED_DIRS = ("EXTEND_image_sketchy", "extended_photo")

TUBERLIN_SKETCH_DIRS = ("png", "sketches", "sketch")
TUBERLIN_PHOTO_DIRS = ("ImageResized", "images", "photo", "photos")
TUBERLIN_VARIANT = "png"
# Photo-folder spelling -> sketch-folder spelling, for names that normalisation cannot match.
# Left empty on purpose: the exact misspellings of the DSH photo folders could not be
# checked against the release here. Add them (or ship <root>/category_map.json) when a
# category is reported unmatched; the error message suggests the closest sketch names.
TUBERLIN_NAME_OVERRIDES: dict[str, str] = {}
CATEGORY_MAP_FILE = "category_map.json"

SKETCHY_LAYOUT = (
    "<root>/photo/tx_000000000000/<category>/*.jpg and <root>/sketch/<variant>/<category>/*.png "
    "(optionally <root>/EXTEND_image_sketchy/<category>/*.jpg or <root>/extended_photo/<category>/*.jpg)"
)
TUBERLIN_LAYOUT = (
    "<root>/png/<category>/*.png (TU-Berlin sketches) and <root>/ImageResized/<category>/* "
    "(or images/, photo/, photos/: TU-Berlin Extension photos)"
)


class DatasetLayoutError(ValueError):
    """The dataset folder does not have the expected layout, or its contents are inconsistent."""


@dataclass
class PhotoRecord:
    path: Path
    category: str


@dataclass
class SketchRecord:
    path: Path
    category: str
    variant: str
    drawing_id: str  # same drawing across variants: "<category>/<file stem>"
    photo_id: str | None  # Sketchy: the source photo's file stem (ImageNet id); else None


@dataclass
class SkippedFile:
    path: Path
    reason: str


@dataclass
class DatasetIndex:
    """Every usable photo and sketch of a dataset, in a fixed (sorted) order.

    Splits store integer positions into ``photos`` and ``sketches``, so this order is part of
    the on-disk contract: it depends only on relative paths, never on listing order.
    """

    name: str
    root: Path
    categories: list[str]
    photos: list[PhotoRecord]
    sketches: list[SketchRecord]
    skipped: list[SkippedFile] = field(default_factory=list)
    query_variant: str = SKETCHY_QUERY_VARIANT

    def __post_init__(self) -> None:
        self._labels = {c: i for i, c in enumerate(self.categories)}

    def label_of(self, category: str) -> int:
        """Integer label of a category (position in the sorted category list)."""
        try:
            return self._labels[category]
        except KeyError:
            raise KeyError(f"unknown category {category!r} in dataset {self.name}") from None

    @property
    def sketch_variants(self) -> list[str]:
        return sorted({s.variant for s in self.sketches})

    def sketch_counts(self) -> dict[str, int]:
        """Sketches per variant plus ``total``."""
        counts: dict[str, int] = defaultdict(int)
        for s in self.sketches:
            counts[s.variant] += 1
        return {**dict(sorted(counts.items())), "total": len(self.sketches)}

    def photo_labels(self) -> list[int]:
        return [self._labels[p.category] for p in self.photos]

    def sketch_labels(self) -> list[int]:
        return [self._labels[s.category] for s in self.sketches]

    def relative(self, path: Path) -> str:
        """A file's path relative to the root, with ``/`` separators (stable across machines)."""
        return Path(path).relative_to(self.root).as_posix()

    def identity(self) -> dict[str, object]:
        """Which data a run read: the absolute root and a fingerprint, the sha256 of every indexed
        photo's and sketch's relative path and size in bytes (sorted), so two runs can tell
        whether they saw the same files without hashing gigabytes of images."""
        digest = hashlib.sha256()
        for record in sorted((*self.photos, *self.sketches), key=lambda r: self.relative(r.path)):
            digest.update(f"{self.relative(record.path)}\t{record.path.stat().st_size}\n".encode())
        return {"dataset": self.name, "root": str(Path(self.root).resolve()),
                "fingerprint": digest.hexdigest()[:16], "photos": len(self.photos), "sketches": len(self.sketches)}


def normalise_category(name: str) -> str:
    """Spelling-insensitive key: lower case, parentheses dropped, runs of spaces, underscores
    and hyphens folded to one ``_`` (``"Car (Sedan)"`` and ``"car_(sedan)"`` -> ``car_sedan``)."""
    key = re.sub(r"[()\[\]]", " ", name.lower())
    return re.sub(r"[\s_\-]+", "_", key).strip("_")


def _is_hidden(name: str) -> bool:
    # ._foo.jpg AppleDouble files and .DS_Store ride along in archives made on macOS.
    return name.startswith(".")


def printable_path(path: str | os.PathLike) -> str:
    """``path`` as text that can always be printed or written as UTF-8: a file name whose
    bytes are not UTF-8 (Python holds them as lone surrogates) shows them as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8_name(name: str) -> bool:
    """Whether a name read from the file system is valid UTF-8. Other bytes come back from
    the OS as lone surrogates, which no UTF-8 text (split fingerprints, records, JSON written
    as UTF-8, the terminal) can hold: such a file would fail far from where it was found."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _subdirs(folder: Path) -> dict[str, Path]:
    """Visible sub-folders by name. A folder whose name is not UTF-8 is refused, naming it: it
    would be a category (or variant) that no record or split file can spell."""
    with os.scandir(folder) as it:
        found = {e.name: Path(e.path) for e in it if e.is_dir() and not _is_hidden(e.name)}
    for name, path in found.items():
        if not is_utf8_name(name):
            raise DatasetLayoutError(f"folder name is not valid UTF-8: {printable_path(path)}; rename it "
                                     "(e.g. convmv -f latin1 -t utf8)")
    return found


def _image_files(folder: Path, extensions: Sequence[str], skipped: list[SkippedFile]) -> list[Path]:
    """Image files in one category folder, sorted. Skipped (and listed in ``skipped``): empty
    files (cheap to spot from the directory entry, and the commonest trace of an interrupted
    copy) and files whose name is not UTF-8 (see :func:`is_utf8_name`)."""
    files = []
    with os.scandir(folder) as it:
        for e in it:
            if _is_hidden(e.name) or not e.is_file() or not e.name.lower().endswith(tuple(extensions)):
                continue
            if not is_utf8_name(e.name):
                skipped.append(SkippedFile(Path(e.path), f"file name is not valid UTF-8 "
                                           f"({printable_path(e.name)}): rename it"))
                continue
            if e.stat().st_size == 0:
                skipped.append(SkippedFile(Path(e.path), "empty file"))
                continue
            files.append(Path(e.path))
    return sorted(files)


def _match_folders(
    reference: dict[str, Path], other: dict[str, Path], overrides: dict[str, str]
) -> tuple[dict[str, Path], list[str], list[str]]:
    """Map ``other``'s folders onto ``reference``'s names. Returns (reference name -> other
    folder, reference names without a match, other names without a match)."""
    by_key = {normalise_category(n): n for n in reference}
    norm_overrides = {normalise_category(k): normalise_category(v) for k, v in overrides.items()}
    matched: dict[str, Path] = {}
    unmatched_other = []
    for name, path in sorted(other.items()):
        key = normalise_category(name)
        key = norm_overrides.get(key, key)
        ref = by_key.get(key)
        if ref is None or ref in matched:
            unmatched_other.append(name)
        else:
            matched[ref] = path
    unmatched_ref = sorted(set(reference) - set(matched))
    return matched, unmatched_ref, unmatched_other


def _hint(names: Iterable[str], candidates: Iterable[str]) -> str:
    candidates = list(candidates)
    parts = []
    for n in names:
        close = difflib.get_close_matches(n, candidates, n=1, cutoff=0.6)
        parts.append(f"{n!r}" + (f" (closest: {close[0]!r})" if close else ""))
    return ", ".join(parts)


def _check_variants(requested: Sequence[str] | None, valid: Sequence[str], present: Sequence[str],
                    where: Path) -> list[str]:
    if requested is None:
        return list(present)
    requested = [requested] if isinstance(requested, str) else list(requested)
    unknown = [v for v in requested if v not in valid]
    if unknown:
        raise ValueError(f"unknown sketch variant {unknown[0]!r}; valid variants: {', '.join(valid)}")
    missing = [v for v in requested if v not in present]
    if missing:
        raise DatasetLayoutError(
            f"sketch variant {missing[0]!r} is not in {where} (present: {', '.join(present) or 'none'})"
        )
    return requested


def _resolve_sketchy_root(root: Path) -> Path:
    """The folder that holds ``photo/`` and ``sketch/``: ``root`` itself or the official
    download's ``256x256/`` (possibly under ``rendered_256x256/``)."""
    for candidate in (root, root / "256x256", root / "rendered_256x256" / "256x256"):
        if (candidate / "sketch").is_dir():
            return candidate
    raise DatasetLayoutError(f"{root} does not have the Sketchy layout: expected {SKETCHY_LAYOUT}")


def _sketch_record(path: Path, category: str, variant: str, with_photo_id: bool) -> SketchRecord:
    stem = path.stem
    photo_id = None
    if with_photo_id:
        m = re.fullmatch(r"(.+)-\d+", stem)
        photo_id = m.group(1) if m else None
    return SketchRecord(path, category, variant, f"{category}/{stem}", photo_id)


def _read_sketchy(name: str, given_root: Path, sketch_variants: Sequence[str] | None) -> DatasetIndex:
    root = _resolve_sketchy_root(given_root)
    skipped: list[SkippedFile] = []
    sketch_dir = root / "sketch"
    present = sorted(v for v in _subdirs(sketch_dir) if v.startswith("tx_"))
    variants = _check_variants(sketch_variants, SKETCHY_VARIANTS, present, sketch_dir)
    if not variants:
        raise DatasetLayoutError(f"{sketch_dir} has no sketch variant folders: expected {SKETCHY_LAYOUT}")

    photo_dir = root / "photo" / SKETCHY_PHOTO_VARIANT
    photo_cats = _subdirs(photo_dir) if photo_dir.is_dir() else {}
    extended_dir = next(
        (base / d for d in SKETCHY_EXTENDED_DIRS for base in dict.fromkeys((root, given_root))
         if (base / d).is_dir()),
        None,
    )
    extended_cats = _subdirs(extended_dir) if extended_dir else {}
    if not photo_cats and not extended_cats:
        raise DatasetLayoutError(f"{root} has no photo folders: expected {SKETCHY_LAYOUT}")

    # Canonical names are Sketchy's own photo folder names (the extended set's spellings differ).
    ref_variant_cats = _subdirs(sketch_dir / variants[0])
    categories = sorted(photo_cats or ref_variant_cats)
    photo_sources: dict[str, list[Path]] = defaultdict(list)
    for cat, path in photo_cats.items():
        photo_sources[cat].append(path)
    if extended_cats:
        matched, missing, extra = _match_folders({c: Path() for c in categories}, extended_cats, {})
        if extra:
            raise DatasetLayoutError(
                f"extended photo folders with no Sketchy category in {extended_dir}: "
                f"{_hint(extra, categories)}"
            )
        for cat, path in matched.items():
            photo_sources[cat].append(path)

    photos: list[PhotoRecord] = []
    for cat in categories:
        seen: set[str] = set()
        for folder in photo_sources.get(cat, []):  # Sketchy's own folder first: it wins
            for f in _image_files(folder, PHOTO_EXTENSIONS, skipped):
                if f.stem not in seen:
                    seen.add(f.stem)
                    photos.append(PhotoRecord(f, cat))

    sketches: list[SketchRecord] = []
    for variant in variants:
        cat_dirs = _subdirs(sketch_dir / variant)
        matched, _missing, extra = _match_folders({c: Path() for c in categories}, cat_dirs, {})
        if extra:
            raise DatasetLayoutError(
                f"sketch category folder(s) with no photos in {sketch_dir / variant}: "
                f"{_hint(extra, categories)}"
            )
        for cat in categories:
            if cat in matched:
                for f in _image_files(matched[cat], SKETCH_EXTENSIONS, skipped):
                    sketches.append(_sketch_record(f, cat, variant, with_photo_id=True))

    # The folder given is the root even when the files sit in its 256x256/: relative paths
    # (split fingerprints, pack) then also cover an extended folder placed beside 256x256/.
    index = DatasetIndex(name, given_root, categories, photos, sketches, skipped, SKETCHY_QUERY_VARIANT)
    _check_nonempty(index, SKETCHY_LAYOUT)
    return index


def _load_category_map(root: Path, category_map: dict[str, str] | None) -> dict[str, str]:
    overrides = dict(TUBERLIN_NAME_OVERRIDES)
    map_file = root / CATEGORY_MAP_FILE
    if map_file.is_file():
        try:
            loaded = json.loads(map_file.read_text())
        except json.JSONDecodeError as err:
            raise DatasetLayoutError(f"{map_file} is not valid JSON: {err}") from None
        if not isinstance(loaded, dict):
            raise DatasetLayoutError(f"{map_file} must map photo-folder names to sketch-folder names")
        overrides.update(loaded)
    overrides.update(category_map or {})
    return overrides


def _read_tuberlin(name: str, root: Path, sketch_variants: Sequence[str] | None,
                   category_map: dict[str, str] | None) -> DatasetIndex:
    sketch_dir = next((root / d for d in TUBERLIN_SKETCH_DIRS if (root / d).is_dir()), None)
    photo_dir = next((root / d for d in TUBERLIN_PHOTO_DIRS if (root / d).is_dir()), None)
    if sketch_dir is None or photo_dir is None:
        raise DatasetLayoutError(f"{root} does not have the TU-Berlin Extension layout: expected {TUBERLIN_LAYOUT}")
    _check_variants(sketch_variants, (TUBERLIN_VARIANT,), (TUBERLIN_VARIANT,), sketch_dir)
    skipped: list[SkippedFile] = []
    sketch_cats = _subdirs(sketch_dir)
    photo_cats = _subdirs(photo_dir)
    overrides = _load_category_map(root, category_map)
    matched, no_photos, no_sketches = _match_folders(sketch_cats, photo_cats, overrides)
    if no_photos or no_sketches:
        parts = []
        if no_sketches:
            parts.append(f"photo folders in {photo_dir.name}/ matching no sketch category: "
                         f"{_hint(no_sketches, sketch_cats)}")
        if no_photos:
            parts.append(f"sketch categories with no photo folder: {_hint(no_photos, photo_cats)}")
        raise DatasetLayoutError(
            "unmatched TU-Berlin categories; " + "; ".join(parts)
            + f". Add the spellings to {root / CATEGORY_MAP_FILE} as {{\"photo folder\": \"sketch folder\"}}"
        )
    categories = sorted(sketch_cats)
    photos = [PhotoRecord(f, cat) for cat in categories
              for f in _image_files(matched[cat], PHOTO_EXTENSIONS, skipped)]
    sketches = [_sketch_record(f, cat, TUBERLIN_VARIANT, with_photo_id=False) for cat in categories
                for f in _image_files(sketch_cats[cat], SKETCH_EXTENSIONS, skipped)]
    index = DatasetIndex(name, root, categories, photos, sketches, skipped, TUBERLIN_VARIANT)
    _check_nonempty(index, TUBERLIN_LAYOUT)
    return index


def _check_nonempty(index: DatasetIndex, layout: str) -> None:
    with_photos = {p.category for p in index.photos}
    with_sketches = {s.category for s in index.sketches}
    no_photos = [c for c in index.categories if c not in with_photos]
    no_sketches = [c for c in index.categories if c not in with_sketches]
    if no_photos:
        raise DatasetLayoutError(
            f"{len(no_photos)} categor{'y has' if len(no_photos) == 1 else 'ies have'} no photos in "
            f"{index.root}: {', '.join(no_photos[:5])}{' ...' if len(no_photos) > 5 else ''} (expected {layout})"
        )
    if no_sketches:
        raise DatasetLayoutError(
            f"{len(no_sketches)} categor{'y has' if len(no_sketches) == 1 else 'ies have'} no sketches in "
            f"{index.root}: {', '.join(no_sketches[:5])}{' ...' if len(no_sketches) > 5 else ''} (expected {layout})"
        )


def verify_index(index: DatasetIndex, progress: bool = False) -> DatasetIndex:
    """Decode every file; move unreadable ones from ``photos``/``sketches`` to ``skipped``.
    Slow (a full decode per file), hence opt-in; the training Dataset copes without it."""
    from tqdm.auto import tqdm

    def ok(path: Path, mode: str) -> bool:
        try:
            load_image(path, mode)
            return True
        except UnreadableImageError as err:
            index.skipped.append(SkippedFile(path, err.reason))
            return False

    total = len(index.photos) + len(index.sketches)
    with tqdm(total=total, desc="verify", disable=not progress, unit="img") as bar:
        photos = []
        for p in index.photos:
            if ok(p.path, "RGB"):
                photos.append(p)
            bar.update()
        sketches = []
        for s in index.sketches:
            if ok(s.path, "L"):
                sketches.append(s)
            bar.update()
    index.photos, index.sketches = photos, sketches
    _check_nonempty(index, "readable files")
    return index


def read_dataset(
    name: str = "sketchy-mini",
    root: str | os.PathLike | None = None,
    sketch_variants: Sequence[str] | None = None,
    verify: bool = False,
    category_map: dict[str, str] | None = None,
    progress: bool = False,
) -> DatasetIndex:
    """Index a dataset by name (``sketchy``, ``sketchy-mini``, ``tuberlin-ext``, ``sketchy-fg10``).

    ``root`` defaults to the search of :func:`semi3lib.paths.find_dataset_root`
    (``$SEMI3_DATA``, ``./data``, ``../shared/data``). ``sketch_variants`` restricts Sketchy to
    some variants (default: all present). ``verify`` decodes every file and skips unreadable
    ones (otherwise only empty files are skipped here; the Datasets skip the rest lazily).
    ``category_map`` adds TU-Berlin photo->sketch folder spellings.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    folder = find_dataset_root(name, root)
    if name == "tuberlin-ext":
        index = _read_tuberlin(name, folder, sketch_variants, category_map)
    else:
        index = _read_sketchy(name, folder, sketch_variants)
    if verify:
        verify_index(index, progress=progress)
    return index
