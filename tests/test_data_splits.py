"""Splits: the sketchy-mini standard counts, determinism, disjointness, no leak of a query
drawing into training through another variant, zero-shot, and the JSON round trip."""

from __future__ import annotations

import pytest
from data_fixtures import make_sketchy

from semi3lib.config import DataConfig
from semi3lib.data.layouts import read_dataset
from semi3lib.data.splits import index_fingerprint, load_split, make_split, save_split, split_from_config


@pytest.fixture(scope="module")
def mini(sketchy_mini_root):
    return read_dataset("sketchy-mini", sketchy_mini_root)


def test_category_split_of_sketchy_mini_has_1250_queries_and_3125_photo_gallery(mini):
    split = make_split(mini, "category", seed=0)
    assert len(split.query) == 1250 and len(split.gallery) == 3125 and split.train_photos == split.gallery
    per_cat = {}
    for i in split.query:
        s = mini.sketches[i]
        assert s.variant == "tx_000000000000"
        per_cat[s.category] = per_cat.get(s.category, 0) + 1
    assert set(per_cat.values()) == {10} and len(per_cat) == 125


def test_same_seed_gives_the_same_split_and_another_seed_a_different_one(mini):
    a, b, c = make_split(mini, seed=0), make_split(mini, seed=0), make_split(mini, seed=1)
    assert a == b
    assert a.query != c.query and a.train_sketches != c.train_sketches
    za, zb, zc = (make_split(mini, "zeroshot", seed=s) for s in (0, 0, 1))
    assert za == zb and za.categories_unseen != zc.categories_unseen


def test_query_train_and_val_are_disjoint_and_only_held_out_renderings_are_dropped(mini):
    split = make_split(mini, seed=3, val_sketches_per_category=2)
    q, t, v = set(split.query), set(split.train_sketches), set(split.val)
    assert not (q & t) and not (q & v) and not (t & v)
    assert len(split.val) == 250
    dropped = set(range(len(mini.sketches))) - q - t - v
    held = {mini.sketches[i].drawing_id for i in q | v}
    assert all(mini.sketches[i].drawing_id in held and mini.sketches[i].variant != "tx_000000000000" for i in dropped)


def test_no_rendering_of_a_query_drawing_is_in_training(mini):
    split = make_split(mini, seed=0, val_sketches_per_category=1)
    query_drawings = {mini.sketches[i].drawing_id for i in split.query}
    val_drawings = {mini.sketches[i].drawing_id for i in split.val}
    train_drawings = {mini.sketches[i].drawing_id for i in split.train_sketches}
    assert not (query_drawings & train_drawings) and not (val_drawings & train_drawings)
    # The guard matters: some query drawings do have a tx_000100000000 rendering.
    other = {s.drawing_id for s in mini.sketches if s.variant == "tx_000100000000"}
    assert query_drawings & other


def test_zeroshot_split_keeps_unseen_categories_out_of_training(mini):
    split = make_split(mini, "zeroshot", seed=0)
    unseen = set(split.categories_unseen)
    assert len(unseen) == 25 and len(split.categories_seen) == 100
    assert {mini.photos[j].category for j in split.gallery} == unseen
    assert not unseen & {mini.photos[j].category for j in split.train_photos}
    assert {mini.sketches[i].category for i in split.query} == unseen
    assert not unseen & {mini.sketches[i].category for i in split.train_sketches}
    assert len(split.gallery) == 625 and len(split.query) == 625


def test_zeroshot_accepts_explicit_unseen_categories(mini):
    split = make_split(mini, "zeroshot", unseen_categories=["zebra", "airplane"])
    assert split.categories_unseen == ["airplane", "zebra"] and len(split.gallery) == 50
    with pytest.raises(ValueError, match="not in the dataset: unicorn"):
        make_split(mini, "zeroshot", unseen_categories=["unicorn"])


def test_split_from_data_config_matches_make_split(mini):
    cfg = DataConfig(protocol="zeroshot", unseen_categories=10, split_seed=4)
    assert split_from_config(mini, cfg) == make_split(mini, "zeroshot", seed=4, unseen_categories=10)


def test_split_roundtrips_through_json_and_rejects_another_file_list(mini, tmp_path):
    split = make_split(mini, seed=5, val_sketches_per_category=1)
    path = save_split(split, tmp_path / "splits" / "category-5.json")
    assert load_split(path, mini) == split
    other = make_sketchy(tmp_path / "other", extended=None)
    with pytest.raises(ValueError, match="made for a different file list"):
        load_split(path, read_dataset("sketchy", other))
    with pytest.raises(FileNotFoundError, match="split file not found"):
        load_split(tmp_path / "nope.json")


def test_fingerprint_ignores_extensions_and_root(tmp_path):
    a = read_dataset("sketchy", make_sketchy(tmp_path / "a", extended=None))
    b = read_dataset("sketchy", make_sketchy(tmp_path / "b", extended=None))
    assert index_fingerprint(a) == index_fingerprint(b)


def test_bad_split_requests_are_clear_errors(tmp_path):
    index = read_dataset("sketchy", make_sketchy(tmp_path / "s", extended=None))
    with pytest.raises(ValueError, match=r"category 'airplane' has 6 candidate sketches for 50 queries"):
        make_split(index)  # Sketchy's standard 50 per category
    with pytest.raises(ValueError, match="unknown split protocol 'fewshot'"):
        make_split(index, "fewshot")
    with pytest.raises(ValueError, match="0 < unseen categories < 3"):
        make_split(index, "zeroshot", unseen_categories=3)
    assert len(make_split(index, queries_per_category=2).query) == 6
