"""Dataset summaries on the real sketchy-mini: counts per category, sketches beside their
photos, the two sketch variants and their extent on the canvas."""

from __future__ import annotations

import pytest

from semi3lib.data import summary
from semi3lib.data.layouts import read_dataset
from semi3lib.data.splits import make_split


@pytest.fixture(scope="module")
def mini(sketchy_mini_root):
    return read_dataset("sketchy-mini", sketchy_mini_root)


def test_category_table_counts_add_up_to_the_index_and_the_split(mini):
    split = make_split(mini, "category", seed=0)
    table = summary.category_table(mini, split)
    assert list(table.index) == mini.categories
    assert table["photos"].sum() == len(mini.photos)
    assert table["query sketches"].sum() == len(split.query)
    assert table["train sketches"].sum() == len(split.train_sketches)
    assert "val sketches" not in table  # no validation split: the all-zero column is dropped
    variants = [c for c in table if c.startswith("sketches ")]
    assert table[variants].to_numpy().sum() == len(mini.sketches)
    assert summary.variant_label("tx_000000000000") == "tx_000000000000 (whole canvas)"


def test_sketch_photo_examples_pair_each_sketch_with_its_own_photo(mini):
    pairs = summary.sketch_photo_examples(mini, mini.categories[:3], per_category=2, seed=0)
    assert len(pairs) == 6
    for sketch, photo in pairs:
        assert sketch.category == photo.category and sketch.photo_id == photo.path.stem
        assert sketch.variant == mini.query_variant


def test_variant_pairs_are_one_drawing_in_two_renderings_from_distinct_categories(mini):
    pairs = summary.variant_pairs(mini, 4, seed=0)
    assert len(pairs) == 4 and len({a.category for a, _ in pairs}) == 4
    for a, b in pairs:
        assert a.drawing_id == b.drawing_id and (a.variant, b.variant) == tuple(mini.sketch_variants[:2])


def test_variant_extent_is_a_fraction_of_the_canvas(mini):
    table = summary.variant_extent_table(mini, max_per_variant=5, seed=0)
    assert len(table) == 5 * len(mini.sketch_variants)
    assert ((table[["ink", "bbox_area"]] > 0) & (table[["ink", "bbox_area"]] <= 1)).all().all()
    assert (table["bbox_area"] >= table["ink"]).all()
