"""Assembling an experiment: cutting an experiment's query and gallery to some categories."""

from __future__ import annotations

from semi3lib.data.layouts import read_dataset
from semi3lib.data.splits import make_split
from semi3lib.data.experiment import ExperimentData, restrict_split


def test_restrict_split_keeps_the_index_and_its_label_codes(sketchy_mini_root):
    index = read_dataset("sketchy-mini", sketchy_mini_root)
    data = ExperimentData(index, make_split(index, "category", seed=0))
    subset = restrict_split(data, [2, 7])
    assert subset.index is data.index and subset.num_classes == data.num_classes
    assert {index.label_of(index.sketches[i].category) for i in subset.split.query} == {2, 7}
    assert {index.label_of(index.photos[j].category) for j in subset.split.gallery} == {2, 7}
    assert set(subset.split.query) <= set(data.split.query) and subset.split.train_sketches == data.split.train_sketches
    assert len(subset.split.gallery) == sum(p.category in {index.categories[2], index.categories[7]} for p in index.photos)
