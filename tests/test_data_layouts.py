"""Dataset readers: sketchy-mini against its manifest, tiny Sketchy and TU-Berlin Extension
fixtures in their official layouts, and the one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import (
    TUBERLIN_MISSPELLING,
    make_sketchy,
    make_tuberlin,
    truncate,
    write_photo,
)

from semi3lib.data.layouts import DatasetLayoutError, normalise_category, read_dataset
from semi3lib.paths import DatasetNotFoundError


@pytest.fixture(scope="module")
def mini(sketchy_mini_root):
    return read_dataset("sketchy-mini", sketchy_mini_root)


def test_sketchy_mini_counts_match_manifest(mini, sketchy_mini_root):
    manifest = json.loads((sketchy_mini_root / "manifest.json").read_text())
    photos = {mini.relative(p.path) for p in mini.photos}
    sketches = {mini.relative(s.path) for s in mini.sketches}
    assert photos == {f"photo/{k}" for k in manifest["photo"]}
    assert sketches == {f"sketch/{k}" for k in manifest["sketch"]}
    assert len(mini.categories) == 125 and len(mini.photos) == 3125
    assert mini.sketch_counts() == {"tx_000000000000": 3125, "tx_000100000000": 1250, "total": 4375}
    assert mini.skipped == []


def test_labels_are_positions_in_sorted_categories(mini):
    assert mini.categories == sorted(mini.categories)
    assert [mini.label_of(c) for c in mini.categories] == list(range(125))
    with pytest.raises(KeyError, match="unknown category"):
        mini.label_of("unicorn")


def test_sketchy_mini_sketches_name_their_source_photo_and_share_drawings_across_variants(mini):
    photo_ids = {(p.category, p.path.stem) for p in mini.photos}
    tx0 = [s for s in mini.sketches if s.variant == "tx_000000000000"]
    assert all((s.category, s.photo_id) in photo_ids for s in tx0)
    assert len({(s.category, s.photo_id) for s in tx0}) == 578  # the README's source-photo count
    shared = {s.drawing_id for s in tx0} & {s.drawing_id for s in mini.sketches if s.variant == "tx_000100000000"}
    assert len(shared) == 196  # the README's count of drawings rendered in both variants


def test_sketch_variants_can_be_restricted(sketchy_mini_root):
    index = read_dataset("sketchy-mini", sketchy_mini_root, sketch_variants=["tx_000000000000"])
    assert index.sketch_counts() == {"tx_000000000000": 3125, "total": 3125}


def test_full_sketchy_layout_with_extended_photos_is_the_union(tmp_path):
    root = make_sketchy(tmp_path / "sketchy")
    index = read_dataset("sketchy", root)
    assert index.categories == ["airplane", "car_(sedan)", "hot-air_balloon"]
    # 3 Sketchy photos + 2 extras per category; the extended copy of n..._0 is not doubled.
    assert len(index.photos) == 15
    assert sum(1 for p in index.photos if "EXTEND_image_sketchy" in p.path.parts) == 6
    assert index.sketch_counts() == {"tx_000000000000": 18, "tx_000100000000": 9, "total": 27}
    balloon = [p for p in index.photos if p.category == "hot-air_balloon"]
    assert {p.path.parent.name for p in balloon} == {"hot-air_balloon", "hot_air_balloon"}


def test_extended_photos_also_found_as_extended_photo_and_beside_256x256(tmp_path):
    root = make_sketchy(tmp_path / "dl" / "256x256", extended=None)
    for c, cat in enumerate(("airplane", "car_sedan", "hot_air_balloon")):
        write_photo(tmp_path / "dl" / "extended_photo" / cat / f"x{c}.jpg", c)
    index = read_dataset("sketchy", tmp_path / "dl")
    assert len(index.photos) == 12
    assert index.relative(index.photos[0].path).startswith("256x256/photo/")


def test_hidden_files_are_ignored_and_empty_files_skipped(tmp_path):
    root = make_sketchy(tmp_path / "s", extended=None)
    (root / "photo/tx_000000000000/airplane/._n00000000_0.jpg").write_bytes(b"\0\5AppleDouble")
    empty = root / "sketch/tx_000000000000/airplane/n00000000_9-1.png"
    empty.write_bytes(b"")
    index = read_dataset("sketchy", root)
    assert len(index.photos) == 9
    assert [s.path for s in index.skipped] == [empty]


def test_verify_skips_and_counts_a_truncated_jpeg(tmp_path):
    root = make_sketchy(tmp_path / "s", extended=None)
    bad = truncate(root / "photo/tx_000000000000/airplane/n00000000_1.jpg")
    assert len(read_dataset("sketchy", root).photos) == 9  # indexing alone does not decode
    index = read_dataset("sketchy", root, verify=True)
    assert len(index.photos) == 8
    assert [s.path for s in index.skipped] == [bad]
    assert "truncated" in index.skipped[0].reason or "OSError" in index.skipped[0].reason


def test_tuberlin_extension_spellings_are_matched_with_the_name_map(tmp_path):
    root = make_tuberlin(tmp_path / "tu")
    index = read_dataset("tuberlin-ext", root, category_map=TUBERLIN_MISSPELLING)
    assert index.categories == ["alarm clock", "car (sedan)", "satellite dish", "teddy-bear"]
    assert len(index.photos) == 12 and index.sketch_counts() == {"png": 16, "total": 16}
    dish = [p for p in index.photos if p.category == "satellite dish"]
    assert {p.path.parent.name for p in dish} == {"satelite_dish"}
    assert all(s.photo_id is None for s in index.sketches)


def test_tuberlin_name_map_can_ship_as_category_map_json(tmp_path):
    root = make_tuberlin(tmp_path / "tu", photo_dir="images")
    (root / "category_map.json").write_text(json.dumps(TUBERLIN_MISSPELLING))
    assert len(read_dataset("tuberlin-ext", root).categories) == 4


def test_tuberlin_unmatched_category_is_a_clear_error(tmp_path):
    root = make_tuberlin(tmp_path / "tu")
    with pytest.raises(DatasetLayoutError) as err:
        read_dataset("tuberlin-ext", root)
    msg = str(err.value)
    assert "\n" not in msg
    assert "'satelite_dish' (closest: 'satellite dish')" in msg
    assert "sketch categories with no photo folder: 'satellite dish'" in msg


def test_category_names_normalise_across_spellings():
    assert normalise_category("Car (Sedan)") == normalise_category("car_(sedan)") == "car_sedan"
    assert normalise_category("hot-air balloon") == normalise_category("hot_air_balloon")


def test_missing_root_is_a_one_line_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read_dataset("sketchy", tmp_path / "nowhere")


def test_default_search_names_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEMI3_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        read_dataset("sketchy")
    assert str(tmp_path / "data") in str(err.value) and "shared" in str(err.value)


@pytest.mark.parametrize("kind", ["missing", "file", "typo"])
def test_a_semi3_data_that_is_not_the_datasets_folder_is_an_error_not_a_fallback(tmp_path, monkeypatch, kind):
    make_sketchy(tmp_path / "data" / "sketchy", extended=None)  # a copy the search would fall back to
    monkeypatch.chdir(tmp_path)
    target = {"missing": tmp_path / "nowhere", "file": tmp_path / "a-file", "typo": tmp_path / "dat"}[kind]
    if kind == "file":
        target.write_text("not a folder")
    if kind == "typo":
        target.mkdir()
    monkeypatch.setenv("SEMI3_DATA", str(target))
    with pytest.raises(DatasetNotFoundError) as err:
        read_dataset("sketchy")
    message = str(err.value)
    assert str(target) in message and "\n" not in message
    assert {"missing": "does not exist", "file": "is a file", "typo": "not found"}[kind] in message


def test_dataset_under_semi3_data_is_found(tmp_path, monkeypatch):
    make_sketchy(tmp_path / "store" / "sketchy", extended=None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEMI3_DATA", str(tmp_path / "store"))
    assert len(read_dataset("sketchy").photos) == 9


def test_wrong_layout_error_describes_the_expected_layout(tmp_path):
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"expected <root>/photo/tx_000000000000/<category>/\*\.jpg"):
        read_dataset("sketchy", tmp_path / "flat")
    with pytest.raises(DatasetLayoutError, match=r"expected <root>/png/<category>/\*\.png"):
        read_dataset("tuberlin-ext", tmp_path / "flat")


def test_category_without_sketches_is_an_error(tmp_path):
    root = make_sketchy(tmp_path / "s", extended=None)
    write_photo(root / "photo/tx_000000000000/zebra/n1.jpg", 1)
    with pytest.raises(DatasetLayoutError, match="1 category has no sketches .*: zebra"):
        read_dataset("sketchy", root)


def test_category_without_photos_is_an_error(tmp_path):
    root = make_sketchy(tmp_path / "s", extended=None)
    for f in (root / "photo/tx_000000000000/airplane").iterdir():
        f.unlink()
    with pytest.raises(DatasetLayoutError, match="1 category has no photos .*: airplane"):
        read_dataset("sketchy", root)


def test_sketch_folder_without_photo_category_is_an_error(tmp_path):
    root = make_sketchy(tmp_path / "s", extended=None)
    (root / "sketch/tx_000000000000/zebra").mkdir()
    with pytest.raises(DatasetLayoutError, match="sketch category folder.* with no photos.*'zebra'"):
        read_dataset("sketchy", root)


def test_unknown_or_absent_variant_is_an_error(tmp_path):
    root = make_sketchy(tmp_path / "s", extended=None)
    with pytest.raises(ValueError, match="unknown sketch variant 'tx_1'; valid variants: tx_000000000000"):
        read_dataset("sketchy", root, sketch_variants=["tx_1"])
    absent = "'tx_000000001010' is not in .*present: tx_000000000000, tx_000100000000"
    with pytest.raises(DatasetLayoutError, match=absent):
        read_dataset("sketchy", root, sketch_variants=["tx_000000001010"])


def test_unknown_dataset_name_is_an_error():
    valid = "valid names: sketchy, sketchy-mini, tuberlin-ext"
    with pytest.raises(ValueError, match=f"unknown dataset 'quickdraw'; {valid}"):
        read_dataset("quickdraw", Path("."))


def test_identity_names_the_root_and_changes_with_any_file(tmp_path):
    root = make_sketchy(tmp_path / "sketchy", extended=None)
    first = read_dataset("sketchy", root).identity()
    assert first["root"] == str(root.resolve()) and first["photos"] == 9
    assert read_dataset("sketchy", root).identity() == first  # the same files: the same fingerprint
    photo = next((root / "photo").rglob("*.jpg"))
    photo.write_bytes(photo.read_bytes() + b"\0")  # one byte more in one photo
    assert read_dataset("sketchy", root).identity()["fingerprint"] != first["fingerprint"]
