"""Co-attention and embedding-space analyses on small synthetic arrays."""

from __future__ import annotations

import numpy as np

from semi3lib.book import analysis


def test_neighbourhood_stats_on_separated_domains():
    x = np.array([[1, 0.0], [1, 0.01], [0, 1.0], [0.01, 1]])
    stats = analysis.neighbourhood_stats(x, category=np.array([0, 1, 0, 1]), is_sketch=np.array([1, 1, 0, 0]), k=1)
    assert stats["other_domain"] == 0.0 and stats["same_category"] == 0.0


def test_joint_points_stack_sketches_then_photos_with_renumbered_categories():
    emb = {"query": np.eye(4, dtype=np.float32), "query_labels": np.array([3, 5, 7, 5]),
           "gallery": np.ones((3, 4), np.float32), "gallery_labels": np.array([5, 3, 9])}
    points = analysis.joint_points(emb, [3, 5])
    assert points["x"].shape == (5, 4)
    assert list(points["category"]) == [0, 1, 1, 1, 0]
    assert list(points["is_sketch"]) == [True, True, True, False, False]


def test_select_categories_is_seeded_sorted_and_drawn_from_the_labels():
    labels = np.array([4, 4, 7, 9, 12, 15])
    picked = analysis.select_categories(labels, 3, seed=1)
    assert picked == sorted(picked) and set(picked) <= {4, 7, 9, 12, 15} and len(picked) == 3
    assert analysis.select_categories(labels, 3, seed=1) == picked
    assert analysis.select_categories(labels, 10) == [4, 7, 9, 12, 15]


def test_channels_that_separate_categories_are_found_and_reported_per_category():
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.4, 0.6, size=(40, 8))
    labels = np.arange(40) % 2
    weights[labels == 1, 5] += 0.3  # channel 5 lifted for category 1 only
    assert analysis.discriminative_channels(weights, labels, 1) == [5]
    table = analysis.boosted_channels(weights, labels, ["cat", "dog"], top=2)
    assert list(table.index) == ["cat", "dog"] and table.loc["dog", "#1"].startswith("5 (+")
    assert table.loc["dog", "photos"] == 20
