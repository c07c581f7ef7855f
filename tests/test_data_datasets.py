"""torch Datasets: shapes and ranges, determinism per epoch, balanced pairs, photo and edgemap
flipped together, and unreadable files that never stop an epoch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from data_fixtures import make_sketchy, truncate
from PIL import Image

from semi3lib.data.datasets import (
    NO_LABEL,
    GalleryPhotos,
    QuerySketches,
    TrainTriplets,
    resize_center_crop,
    to_tensor,
)
from semi3lib.data.images import load_image
from semi3lib.data.layouts import read_dataset
from semi3lib.data.splits import make_split
from semi3lib.data.edgemaps import compute_edgemap

SIZE = 32


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = make_sketchy(tmp_path_factory.mktemp("sketchy"), categories=("ant", "bee", "cat", "dog"),
                        extended=None, photo_size=(60, 44))
    index = read_dataset("sketchy", root)
    return index, make_split(index, queries_per_category=1)


@pytest.fixture()
def triplets(tiny, tmp_path):
    index, split = tiny
    return TrainTriplets(index, split, image_size=SIZE, cache_dir=tmp_path / "edges", seed=0)


def test_train_item_has_three_image_tensors_and_labels(triplets, tiny):
    index, split = tiny
    item = triplets[0]
    for key in ("sketch", "photo", "edge"):
        t = item[key]
        assert t.shape == (3, SIZE, SIZE) and t.dtype == torch.float32
        assert 0.0 <= t.min() and t.max() <= 1.0
    assert torch.equal(item["sketch"][0], item["sketch"][2]) and torch.equal(item["edge"][0], item["edge"][1])
    assert item["sketch_label"].dtype == torch.long and item["photo_label"].dtype == torch.long
    assert item["sketch_label"].item() == index.label_of(index.sketches[split.train_sketches[0]].category)
    assert item["same"].item() == float(item["sketch_label"] == item["photo_label"])
    assert len(triplets) == len(split.train_sketches)


def test_items_are_deterministic_per_epoch_and_change_with_the_epoch(triplets, tiny, tmp_path):
    index, split = tiny
    twin = TrainTriplets(index, split, image_size=SIZE, cache_dir=tmp_path / "edges2", seed=0)
    triplets.set_epoch(3)
    twin.set_epoch(3)
    for i in range(len(triplets)):
        a, b = triplets[i], twin[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
    draws = lambda ds: [(ds[i]["photo_label"].item(), ds[i]["photo"].sum().item()) for i in range(len(ds))]
    e3 = draws(triplets)
    triplets.set_epoch(4)
    assert draws(triplets) != e3


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_positive_fraction_sets_the_share_of_same_category_pairs(tiny, tmp_path, fraction):
    index, split = tiny
    ds = TrainTriplets(index, split, image_size=8, edge_method="canny", cache_dir=tmp_path, positive_fraction=fraction)
    same = []
    for epoch in range(12):
        ds.set_epoch(epoch)
        same += [ds[i]["same"].item() for i in range(len(ds))]
    share = float(np.mean(same))
    if fraction in (0.0, 1.0):
        assert share == fraction
    else:
        assert 0.4 < share < 0.6, share  # 12 x 32 = 384 draws


def _views(index, j: int, size: int):
    photo = load_image(index.photos[j].path)
    edge = Image.fromarray(compute_edgemap(np.asarray(photo), "canny"))
    return to_tensor(resize_center_crop(photo, size)), to_tensor(resize_center_crop(edge, size))


def test_photo_and_its_edgemap_are_flipped_together_and_the_sketch_independently(tiny, tmp_path):
    index, split = tiny
    ds = TrainTriplets(index, split, image_size=SIZE, cache_dir=tmp_path, hflip=True)
    views = [_views(index, j, SIZE) for j in split.train_photos]
    combos = set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            matches = [(flip, j) for j, (p, e) in enumerate(views) for flip in (False, True)
                       if torch.equal(item["photo"], p.flip(-1) if flip else p)]
            assert len(matches) == 1, "each photo is one of the training photos, flipped or not"
            flip, j = matches[0]
            expected_edge = views[j][1].flip(-1) if flip else views[j][1]
            assert torch.equal(item["edge"], expected_edge), "the edge is that photo's edgemap, same flip"
            plain = to_tensor(resize_center_crop(load_image(index.sketches[split.train_sketches[i]].path, "L"), SIZE))
            sketch_flip = not torch.equal(item["sketch"], plain)
            combos.add((flip, sketch_flip))
    assert combos == {(False, False), (False, True), (True, False), (True, True)}


def test_without_hflip_nothing_is_flipped(tiny, tmp_path):
    index, split = tiny
    ds = TrainTriplets(index, split, image_size=SIZE, cache_dir=tmp_path, hflip=False)
    for i in range(len(ds)):
        plain = to_tensor(resize_center_crop(load_image(index.sketches[split.train_sketches[i]].path, "L"), SIZE))
        assert torch.equal(ds[i]["sketch"], plain)


def test_unreadable_files_are_warned_counted_and_replaced_never_raised(tmp_path):
    root = make_sketchy(tmp_path / "s", categories=("ant", "bee", "cat"), extended=None, photos_per_category=2)
    bad_photo = truncate(root / "photo/tx_000000000000/bee/n00000001_0.jpg")
    bad_sketch = truncate(root / "sketch/tx_000000000000/ant/n00000000_1-2.png")
    index = read_dataset("sketchy", root)  # lazily: indexing does not decode
    split = make_split(index, queries_per_category=1, seed=1)
    ds = TrainTriplets(index, split, image_size=16, cache_dir=tmp_path / "edges")
    assert any(index.sketches[i].path == bad_sketch for i in split.train_sketches)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)
    replaced = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(3):
            ds.set_epoch(epoch)
            batches = list(loader)
            assert sum(len(b["same"]) for b in batches) == len(ds)
            replaced += sum(int(b["replaced"].sum()) for b in batches)
    assert ds.bad_files == {str(bad_photo), str(bad_sketch)}
    assert replaced >= 3, "the bad sketch is drawn once per epoch, and each replacement is counted"
    messages = [str(w.message) for w in caught if "unreadable image" in str(w.message)]
    assert len(messages) == 2, "one warning per bad file, not per use"

    gallery = GalleryPhotos(index, split.gallery, image_size=16, cache_dir=tmp_path / "edges")
    with pytest.warns(RuntimeWarning, match="n00000001_0.jpg"):
        items = [gallery[i] for i in range(len(gallery))]
    # a placeholder that carries no category: never a blank photo of "bee" to be scored
    assert [(gallery.path(i), it["label"].item()) for i, it in enumerate(items) if not it["valid"]] == \
        [(bad_photo, NO_LABEL)]
    assert all(it["label"].item() >= 0 for it in items if it["valid"])
    queries = QuerySketches(index, list(range(len(index.sketches))), image_size=16)
    with pytest.warns(RuntimeWarning, match="n00000000_1-2.png"):
        items = [queries[i] for i in range(len(queries))]
    assert [(queries.path(i), it["label"].item()) for i, it in enumerate(items) if not it["valid"]] == \
        [(bad_sketch, NO_LABEL)]


def test_gallery_and_query_items(tiny, tmp_path):
    index, split = tiny
    gallery = GalleryPhotos(index, split.gallery, image_size=SIZE, edge_method="xdog", cache_dir=tmp_path)
    g = gallery[2]
    assert g["photo"].shape == g["edge"].shape == (3, SIZE, SIZE)
    j = split.gallery[2]
    assert g["index"].item() == j and g["label"].item() == index.label_of(index.photos[j].category)
    queries = QuerySketches(index, split.query, image_size=SIZE)
    q = queries[1]
    assert q["sketch"].shape == (3, SIZE, SIZE) and q["index"].item() == split.query[1]
    assert len(gallery) == len(index.photos) and len(queries) == 4


def test_resize_center_crop_scales_the_shorter_side_then_crops():
    img = Image.fromarray(np.arange(60 * 40, dtype=np.uint8).reshape(40, 60) % 255)
    out = resize_center_crop(img, 20)
    assert out.size == (20, 20)
    assert resize_center_crop(Image.new("RGB", (10, 30)), 16).size == (16, 16)


def test_image_to_tensor_prepares_images_exactly_as_the_datasets(tiny, tmp_path):
    from semi3lib.data.transforms import image_to_tensor

    index, split = tiny
    item = GalleryPhotos(index, split.gallery, image_size=SIZE, cache_dir=tmp_path)[0]
    photo = load_image(index.photos[split.gallery[0]].path)
    assert torch.equal(image_to_tensor(photo, SIZE), item["photo"])
    assert torch.equal(image_to_tensor(compute_edgemap(np.asarray(photo)), SIZE), item["edge"])
    with pytest.raises(ValueError, match="uint8"):
        image_to_tensor(np.zeros((4, 4), np.float32), SIZE)
