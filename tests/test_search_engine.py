"""`semi3 eval`, `semi3 index` and `semi3 search` on a real smoke-trained checkpoint."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from semi3lib.cli import main


def _photo_folder(root, tmp_path, categories=("airplane", "alarm_clock"), broken=True):
    """4 real photos per category in nested folders, and (``broken``) one unreadable file."""
    folder = tmp_path / "photos"
    for cat in categories:
        (folder / "nested" / cat).mkdir(parents=True)
        for src in sorted((root / "photo" / "tx_000000000000" / cat).glob("*.jpg"))[:4]:
            shutil.copy(src, folder / "nested" / cat / src.name)
    if broken:
        (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return folder


def test_eval_prints_every_metric_as_json(smoke_run, capsys):
    assert main(["eval", "--checkpoint", str(smoke_run / "last.pt"), "--json", "--quiet", "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200"} <= set(metrics)
    history = [json.loads(line) for line in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    assert metrics["mAP@all"] == pytest.approx(history[-1]["query"]["mAP@all"], abs=1e-6)


def test_eval_scores_a_checkpoint_with_another_gallery_embedding_but_no_other_model_change(smoke_run, capsys):
    args = ["eval", "--checkpoint", str(smoke_run / "last.pt"), "--json", "--quiet", "--device", "cpu"]
    assert main([*args, "model.gallery_embedding=photo+edge"]) == 0
    fused = json.loads(capsys.readouterr().out)
    history = [json.loads(line) for line in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    assert fused["mAP@all"] != pytest.approx(history[-1]["query"]["mAP@all"], abs=1e-6)
    assert main([*args, "model.sharing=shared"]) != 0
    assert "only data.* and model.gallery_embedding" in capsys.readouterr().err


def test_index_and_search_return_top_k_photos(smoke_run, sketchy_mini_root, tmp_path, capsys):
    photos = _photo_folder(sketchy_mini_root, tmp_path)
    index = tmp_path / "gallery.npz"
    args = ["index", "--checkpoint", str(smoke_run / "last.pt"), "--photos", str(photos), "--out", str(index),
            "--quiet", "--device", "cpu"]
    with pytest.warns(UserWarning, match="broken.jpg"):  # 1 of 9 unreadable: more than the default 5 %
        assert main(args) == 2
    assert "1 of 9 images" in capsys.readouterr().err and not index.exists()
    with pytest.warns(UserWarning, match="broken.jpg"):
        assert main([*args, "--max-unreadable", "0.2"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built == {"index": str(index), "photos": 8, "skipped": 1, "first_skipped": str(photos / "broken.jpg")}

    sketch = sorted((sketchy_mini_root / "sketch" / "tx_000000000000" / "airplane").glob("*.png"))[0]
    rgba = tmp_path / "sketch_rgba.png"
    Image.open(sketch).convert("RGBA").resize((300, 170)).save(rgba)  # any size and mode
    for query in (sketch, rgba):
        assert main(["search", "--index", str(index), str(query), "-k", "3", "--json", "--device", "cpu"]) == 0
        hits = json.loads(capsys.readouterr().out)["results"]
        assert len(hits) == 3
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        assert all(str(photos) in h["path"] for h in hits)


def test_search_errors_are_one_line(smoke_run, sketchy_mini_root, tmp_path, capsys):
    photos = _photo_folder(sketchy_mini_root, tmp_path, categories=("airplane",), broken=False)
    index = tmp_path / "g.npz"
    assert main(["index", "--checkpoint", str(smoke_run / "last.pt"), "--photos", str(photos), "--out", str(index),
                 "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(index), str(tmp_path / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    assert main(["search", "--index", str(index), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and len(err.strip().splitlines()) == 1
    assert main(["search", "--index", str(tmp_path / "nope.npz"), str(bad)]) == 2


def test_index_built_by_another_model_is_refused(smoke_run, sketchy_mini_root, tmp_path, capsys):
    import torch

    photos = _photo_folder(sketchy_mini_root, tmp_path, categories=("airplane",), broken=False)
    index = tmp_path / "g.npz"
    assert main(["index", "--checkpoint", str(smoke_run / "last.pt"), "--photos", str(photos), "--out", str(index),
                 "--quiet", "--device", "cpu"]) == 0
    ckpt = torch.load(smoke_run / "last.pt", weights_only=False)
    first = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][first] = ckpt["model"][first] + 0.01
    other = tmp_path / "other.pt"
    torch.save(ckpt, other)
    capsys.readouterr()
    sketch = sorted((sketchy_mini_root / "sketch" / "tx_000000000000" / "airplane").glob("*.png"))[0]
    assert main(["search", "--index", str(index), str(sketch), "--checkpoint", str(other)]) == 2
    assert "different model" in capsys.readouterr().err


def test_eval_names_the_first_unreadable_query_and_gallery_photo_in_one_line_each(capsys):
    from semi3lib.cli.engine import _print_metrics

    queries = [f"sketch/q{k:02d}.png" for k in range(10)]  # the first 10 of 12 are named, then the gallery's
    _print_metrics({"mAP@all": 0.5, "queries": 18.0, "gallery": 47.0, "queries_unreadable": 12.0,
                    "gallery_unreadable": 3.0, "unreadable_files": [*queries, "photo/a.jpg", "photo/b.jpg",
                                                                    "photo/c.jpg"]}, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["queries: 18, skipped: 12 (first: sketch/q00.png)",
                          "gallery: 47, skipped: 3 (first: photo/a.jpg)"]
    assert not any("unreadable" in line for line in lines)
