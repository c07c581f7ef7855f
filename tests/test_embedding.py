"""The one photo-embedding loop (engine.embedding.embed_photos): evaluation embeds a split's
gallery with it, ``semi3 index`` / ``semi3 export`` / the widget a list of files
(retrieval.search.embed_photo_files); the same photos give the same embeddings either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semi3lib.config import load_config
from semi3lib.engine.embedding import PhotoFiles, embed_photos
from semi3lib.engine.evaluate import embed_split, load_trained
from semi3lib.models import Semi3Net
from semi3lib.retrieval.search import embed_photo_files

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"


def test_the_galleries_files_embed_as_evaluation_embeds_the_gallery(smoke_run):
    model, cfg, _, data = load_trained(smoke_run / "last.pt", "cpu")
    scored = embed_split(model, data, cfg.data)
    paths = [data.index.photos[j].path for j in data.split.gallery]
    files, kept, skipped = embed_photo_files(model, cfg, paths, "cpu", progress=False)
    assert skipped == 0 and kept == [str(Path(p).resolve()) for p in paths]
    np.testing.assert_allclose(files, scored["gallery"], atol=1e-5)


def test_unreadable_files_are_skipped_with_a_warning_and_the_others_keep_their_order(smoke_run, tmp_path):
    model, cfg, _, data = load_trained(smoke_run / "last.pt", "cpu")
    photos = [Path(data.index.photos[j].path) for j in data.split.gallery[:3]]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    alone, _, _ = embed_photo_files(model, cfg, photos, "cpu", batch_size=2, progress=False)
    with pytest.warns(UserWarning, match="skipping .*broken.jpg"):
        mixed, kept, skipped = embed_photo_files(model, cfg, [photos[0], broken, *photos[1:]], "cpu", batch_size=2,
                                                 progress=False)
    assert skipped == 1 and kept == [str(p.resolve()) for p in photos]
    np.testing.assert_allclose(mixed, alone, atol=1e-6)


def test_the_models_mode_is_kept_and_its_attention_returned(smoke_run):
    model, cfg, _, data = load_trained(smoke_run / "last.pt", "cpu")
    photos = PhotoFiles([data.index.photos[j].path for j in data.split.gallery[:4]], cfg.data.image_size,
                        cfg.data.edge_method)
    evaluated = embed_photos(model, photos, "cpu")
    model.train()
    in_training = embed_photos(model, photos, "cpu")
    assert model.training  # restored
    np.testing.assert_allclose(in_training.embeddings, evaluated.embeddings, atol=1e-6)  # dropout and BN off
    assert evaluated.attention.shape[0] == 4 and evaluated.valid.all() and evaluated.labels is None


def _no_edgemap_model() -> tuple[Semi3Net, object]:
    cfg = load_config(SMOKE, ["model.edge_branch=false", "model.sharing=separate", "model.split_stage=9",
                              "loss.alignment_weight=0", "loss.contrastive_weight=0"])
    return Semi3Net(cfg.model, num_classes=5, load_weights=False).eval(), cfg


def test_a_model_without_the_edgemap_branch_gets_no_edgemaps(sketchy_mini_root, monkeypatch):
    import semi3lib.engine.embedding as embedding

    model, cfg = _no_edgemap_model()
    monkeypatch.setattr(embedding, "compute_edgemap", lambda *a, **k: pytest.fail("computed an unused edgemap"))
    photo = sorted((sketchy_mini_root / "photo" / "tx_000000000000" / "airplane").glob("*.jpg"))[0]
    matrix, kept, skipped = embed_photo_files(model, cfg, [photo], "cpu", progress=False)
    assert matrix.shape == (1, cfg.model.embed_dim) and skipped == 0
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_no_photos_is_an_empty_matrix():
    model, cfg = _no_edgemap_model()
    matrix, kept, skipped = embed_photo_files(model, cfg, [], "cpu", progress=False)
    assert matrix.shape == (0, cfg.model.embed_dim) and matrix.dtype == np.float32 and kept == [] and skipped == 0
