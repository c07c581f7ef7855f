"""Embedding a split: the co-attention weights that come with the gallery, and the embeddings
that training keeps in its run folder for the notebooks."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from semi3lib.book.analysis import coattention_weights
from semi3lib.engine.evaluate import EMBEDDINGS_DIR, SPLIT_ARRAYS, embed_split, evaluate_model, load_trained


def test_training_keeps_its_final_embeddings_and_they_are_what_the_checkpoint_gives(smoke_run):
    model, cfg, _, data = load_trained(smoke_run / "last.pt")
    stored = list((smoke_run / EMBEDDINGS_DIR).glob("query-*.npz"))
    assert len(stored) == 1
    fresh = embed_split(model, data, cfg.data)
    cached = embed_split(model, data, cfg.data, cache_dir=smoke_run)
    assert list((smoke_run / EMBEDDINGS_DIR).glob("*.npz")) == stored  # read, not computed and added
    assert sorted(cached) == sorted(fresh) == ["gallery", "gallery_attention", "gallery_index", "gallery_labels",
                                               "gallery_unreadable", "query", "query_index", "query_labels",
                                               "query_unreadable"]
    np.testing.assert_array_equal(fresh["gallery_index"], data.split.gallery)  # every file read: every row kept
    np.testing.assert_array_equal(fresh["query_index"], data.split.query)
    assert len(fresh["gallery_unreadable"]) == len(fresh["query_unreadable"]) == 0
    for name in fresh:
        np.testing.assert_allclose(cached[name], fresh[name], atol=1e-5, err_msg=name)
    assert evaluate_model(model, data, cfg.data, cache_dir=smoke_run) == evaluate_model(model, data, cfg.data)


def test_gallery_attention_is_the_models_coattention_for_each_photo(smoke_run):
    model, cfg, _, data = load_trained(smoke_run / "last.pt")
    emb = embed_split(model, data, cfg.data)
    weights, labels = coattention_weights(model, data, cfg.data)
    np.testing.assert_allclose(emb["gallery_attention"], weights, atol=1e-6)
    np.testing.assert_array_equal(emb["gallery_labels"], labels)


def test_other_weights_or_other_images_are_not_served_from_the_cache(smoke_run, tmp_path):
    model, cfg, _, data = load_trained(smoke_run / "last.pt")
    first = embed_split(model, data, cfg.data, cache_dir=tmp_path)
    with torch.no_grad():  # the shared embedding head: every sketch and photo moves
        for param in model.embedding.parameters():
            param.mul_(1.5).add_(0.1)
    changed = embed_split(model, data, cfg.data, cache_dir=tmp_path)
    assert not np.allclose(changed["query"], first["query"])
    smaller = embed_split(model, data, dataclasses.replace(cfg.data, image_size=48), cache_dir=tmp_path)
    assert not np.allclose(smaller["query"], changed["query"])
    assert len(list((tmp_path / EMBEDDINGS_DIR).glob("*.npz"))) == 3


def test_the_gallery_embedding_choice_has_its_own_cache_entry(smoke_run, tmp_path):
    model, cfg, _, data = load_trained(smoke_run / "last.pt")
    photo_only = embed_split(model, data, cfg.data, cache_dir=tmp_path)
    model.set_gallery_embedding("photo+edge")
    fused = embed_split(model, data, cfg.data, cache_dir=tmp_path)
    np.testing.assert_allclose(fused["query"], photo_only["query"], atol=1e-6)  # sketches are embedded alike
    assert not np.allclose(fused["gallery"], photo_only["gallery"])
    assert len(list((tmp_path / EMBEDDINGS_DIR).glob("*.npz"))) == 2


def test_a_cached_result_from_before_unreadable_files_were_left_out_is_recomputed(smoke_run, tmp_path):
    """A cache without the row positions may hold blank rows of unreadable files, scored with
    their category's label: it is not read back, but recomputed and replaced."""
    model, cfg, _, data = load_trained(smoke_run / "last.pt")
    fresh = embed_split(model, data, cfg.data, cache_dir=tmp_path)
    (stored,) = (tmp_path / EMBEDDINGS_DIR).glob("*.npz")
    old = {name: fresh[name] for name in ("query", "query_labels", "gallery", "gallery_labels")}
    old["gallery"] = np.zeros_like(old["gallery"])  # what it holds must not come back
    np.savez(stored, **old)
    again = embed_split(model, data, cfg.data, cache_dir=tmp_path)
    assert set(SPLIT_ARRAYS) <= set(again)
    np.testing.assert_allclose(again["gallery"], fresh["gallery"], atol=1e-6)
    with np.load(stored) as rewritten:
        assert set(SPLIT_ARRAYS) <= set(rewritten.files)
