"""``semi3 export`` and the page's preprocessing: the ONNX sketch encoder agrees with PyTorch,
the float16 gallery is the index's, and ``web/preprocess.mjs`` (run by node) prepares a sketch
exactly as ``semi3 search`` does (Pillow), bit for bit."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from semi3lib.cli import main as semi3
from semi3lib.engine.evaluate import load_trained
from semi3lib.retrieval.export import onnx_embed, sketch_tensor
from semi3lib.book.search_page import WEB_DIR
from semi3lib.retrieval.index import load_index

IN_CI = os.environ.get("CI", "").lower() == "true"

PROBE = """
import fs from 'node:fs';
const [mod, input, output] = process.argv.slice(2);
const { sketchTensor } = await import(mod);
const buf = fs.readFileSync(input);
const [w, h, size, normalised] = [buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8), buf.readUInt32LE(12)];
const t = sketchTensor(new Uint8Array(buf.buffer, buf.byteOffset + 16, w * h * 4), w, h, size,
  normalised ? 'normalised' : 'raw');
fs.writeFileSync(output, Buffer.from(t.buffer));
"""


@pytest.mark.data
def test_onnx_sketch_embeddings_agree_with_pytorch_on_20_real_sketches(smoke_run, search_export):
    model, cfg, _, data = load_trained(smoke_run / "last.pt", "cpu")
    queries = [data.index.sketches[i] for i in data.split.query]
    sketches = torch.stack([sketch_tensor(queries[i].path, cfg.data.image_size)
                            for i in np.linspace(0, len(queries) - 1, 20).astype(int)])
    with torch.no_grad():
        expected = model.embed_sketch(sketches).numpy()
    got = onnx_embed(search_export / "sketch_encoder.onnx", sketches.numpy())
    assert got.shape == expected.shape == (20, cfg.model.embed_dim)
    assert np.abs(got - expected).max() < 1e-4
    manifest = json.loads((search_export / "manifest.json").read_text())
    assert manifest["encoder"]["max_abs_diff_vs_pytorch"] < 1e-4 and manifest["encoder"]["parity_sketches"] == 20


@pytest.mark.data
def test_export_gallery_is_the_checkpoints_gallery_in_float16(smoke_run, search_export):
    _, _, _, data = load_trained(smoke_run / "last.pt", "cpu")
    manifest = json.loads((search_export / "manifest.json").read_text())
    index = load_index(search_export / "index.npz")
    assert manifest["count"] == len(index) == len(data.split.gallery)
    gallery = np.fromfile(search_export / "gallery.f16", dtype="<f2").reshape(manifest["count"], manifest["embed_dim"])
    np.testing.assert_array_equal(gallery, index.embeddings.astype(np.float16))
    assert [manifest["categories"][p["category"]] for p in manifest["photos"]] == index.labels
    assert [p["name"] for p in manifest["photos"]] == [os.path.basename(p) for p in index.paths]
    assert manifest["protocol"] == "category" and all("own" not in e for e in manifest["examples"])
    thumbs = sorted((search_export / "thumbs").glob("*.jpg"))
    assert len(thumbs) == manifest["count"] and Image.open(thumbs[0]).size == (96, 96)
    assert manifest["examples"] and all((search_export / e["file"]).is_file() for e in manifest["examples"])


def test_semi3_export_needs_a_checkpoint_or_a_profile(capsys, tmp_path):
    assert semi3(["export", "--out", str(tmp_path)]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert semi3(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
    assert "make book" in capsys.readouterr().err


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("node is required in CI (it also builds the book)")
        pytest.skip("node is not installed")
    return node


def _js_tensor(node: str, rgba: np.ndarray, size: int, tmp_path, strokes: str = "raw") -> np.ndarray:
    probe = tmp_path / "probe.mjs"
    probe.write_text(PROBE)
    h, w = rgba.shape[:2]
    (tmp_path / "in.bin").write_bytes(struct.pack("<IIII", w, h, size, strokes == "normalised") + rgba.tobytes())
    subprocess.run([node, str(probe), str(WEB_DIR / "preprocess.mjs"), str(tmp_path / "in.bin"),
                    str(tmp_path / "out.bin")], check=True, timeout=60)
    return np.fromfile(tmp_path / "out.bin", dtype=np.float32).reshape(3, size, size)


@pytest.mark.slow
@pytest.mark.data
def test_page_preprocessing_is_pillows_bit_for_bit(sketchy_mini_root, tmp_path):
    node = _node()
    sketches = sorted((sketchy_mini_root / "sketch").rglob("*.png"))[::211][:6]
    rng = np.random.default_rng(0)
    synthetic = []
    for w, h in [(37, 53), (300, 200), (129, 128), (64, 64), (511, 300)]:
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        rgba[..., 3][rgba[..., 3] < 60] = 0  # transparent, opaque and half-transparent pixels
        rgba[..., 3][rgba[..., 3] > 200] = 255
        path = tmp_path / f"synthetic-{w}x{h}.png"
        Image.fromarray(rgba, "RGBA").save(path)
        synthetic.append(path)
    for path in [*sketches, *synthetic]:
        rgba = np.asarray(Image.open(path).convert("RGBA"))
        for size in (64, 128):
            expected = sketch_tensor(path, size).numpy()
            np.testing.assert_array_equal(_js_tensor(node, rgba, size, tmp_path), expected, err_msg=f"{path} at {size}")


@pytest.mark.data
def test_export_manifest_lists_every_other_file_with_its_size_and_sha256(search_export):
    import hashlib

    from semi3lib.retrieval.export import FORMAT_VERSION, export_problems, verify_export

    manifest = verify_export(search_export)
    assert manifest["format_version"] == FORMAT_VERSION == 2
    on_disk = sorted(p.relative_to(search_export).as_posix() for p in search_export.rglob("*") if p.is_file())
    assert [f["file"] for f in manifest["files"]] == [name for name in on_disk if name != "manifest.json"]
    for entry in manifest["files"]:
        data = (search_export / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert {"sketch_encoder.onnx", "gallery.f16", "index.npz", "thumbs/00000.jpg", "examples/00.png"} <= {
        f["file"] for f in manifest["files"]}
    assert export_problems(search_export) == (manifest, [])
    # built beside its folder and renamed into place: nothing is left there
    name = search_export.name
    assert [*search_export.parent.glob(f".{name}.*.tmp"), *search_export.parent.glob(f".{name}.*.old")] == []


def test_an_export_that_does_not_verify_names_each_wrong_file(tmp_path):
    import hashlib

    from semi3lib.retrieval.export import ExportError, export_problems, verify_export

    export = tmp_path / "export"
    files = {"sketch_encoder.onnx": b"onnx", "gallery.f16": b"\0\0", "index.npz": b"npz", "thumbs/00000.jpg": b"jpg",
             "examples/00.png": b"png"}
    for name, data in files.items():
        (export / name).parent.mkdir(parents=True, exist_ok=True)
        (export / name).write_bytes(data)
    manifest = {"format": "semi3-search-export", "format_version": 2, "count": 1,
                "encoder": {"file": "sketch_encoder.onnx"}, "gallery": {"file": "gallery.f16"},
                "thumbs": {"pattern": "thumbs/{:05d}.jpg"}, "examples": [{"file": "examples/00.png"}],
                "files": [{"file": n, "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()]}
    (export / "manifest.json").write_text(json.dumps(manifest))
    assert verify_export(export) == manifest
    (export / "gallery.f16").write_bytes(b"\1\1")
    (export / "index.npz").write_bytes(b"longer")
    (export / "examples/00.png").unlink()
    (export / "thumbs/extra.jpg").write_bytes(b"added")
    assert export_problems(export)[1] == ["gallery.f16: sha256 differs from manifest.json",
                                          "index.npz: 6 bytes, manifest.json says 3",
                                          "examples/00.png: missing",
                                          "thumbs/extra.jpg: not listed in manifest.json"]
    with pytest.raises(ExportError, match=f"search export {export} does not verify: gallery.f16"):
        verify_export(export)
    manifest["files"] = [f for f in manifest["files"] if f["file"] != "sketch_encoder.onnx"] + [
        {"file": "../outside", "bytes": 0, "sha256": ""}]
    (export / "manifest.json").write_text(json.dumps(manifest))
    problems = export_problems(export)[1]
    assert "manifest.json: lists {'file': '../outside', 'bytes': 0, 'sha256': ''}, not a file of the export" in problems
    assert "sketch_encoder.onnx: read by the page or the index but not listed in manifest.json" in problems


def test_a_fine_grained_export_is_its_instance_gallery_and_says_so(fine_grained_run, fine_grained_export, tmp_path,
                                                                    capsys):
    """A fine-grained checkpoint's export: the gallery is the run's test photos (12 here), the
    manifest says ``instance`` and names each example sketch's own photo; ``--instance-gallery
    all`` searches every photo (24) instead."""
    from semi3lib.data.instance import sketch_photo_key
    from semi3lib.retrieval.export import MODEL_LABELS, model_label, verify_export

    _, cfg, _, data = load_trained(fine_grained_run / "last.pt", "cpu")
    assert cfg.data.protocol == "instance"
    manifest = verify_export(fine_grained_export)
    assert manifest["protocol"] == "instance" and model_label(manifest) == MODEL_LABELS["instance"]
    assert manifest["count"] == len(data.split.gallery) == len(data.split.test_photos) == 12
    test_photos = sorted(os.path.basename(data.index.photos[j].path) for j in data.split.test_photos)
    assert sorted(p["name"] for p in manifest["photos"]) == test_photos
    index = load_index(fine_grained_export / "index.npz")
    gallery = np.fromfile(fine_grained_export / "gallery.f16", dtype="<f2").reshape(12, manifest["embed_dim"])
    np.testing.assert_array_equal(gallery, index.embeddings.astype(np.float16))
    # each example's own photo, by the dataset's own naming: sketch <photo id>-<n>.png of photo <photo id>.jpg
    queries = list(data.split.query)[::max(1, len(data.split.query) // 12)][:12]
    assert len(manifest["examples"]) == len(queries) == 12
    for example, k in zip(manifest["examples"], queries):
        own = manifest["photos"][example["own"]]
        key = f"{manifest['categories'][own['category']]}/{os.path.splitext(own['name'])[0]}"
        assert key == sketch_photo_key(data.index, k) and example["category"] == data.index.sketches[k].category

    out = tmp_path / "all"
    assert semi3(["export", "--checkpoint", str(fine_grained_run / "last.pt"), "--out", str(out),
                  "--instance-gallery", "all", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["protocol"] == "instance" and printed["photos"] == 24 == len(load_index(out / "index.npz"))


def test_a_manifest_without_a_protocol_is_a_category_models():
    from semi3lib.retrieval.export import ExportError, MODEL_LABELS, manifest_protocol, model_label

    assert manifest_protocol({}) == "category" and model_label({}) == MODEL_LABELS["category"]
    assert model_label({"protocol": "instance"}).startswith("Fine-grained: the photo this sketch was drawn from")
    with pytest.raises(ExportError, match="protocol 'zeroshot' is not one of category, instance"):
        manifest_protocol({"protocol": "zeroshot"})


@pytest.mark.data
def test_instance_gallery_is_refused_for_a_category_checkpoint(smoke_run, tmp_path, capsys):
    assert semi3(["export", "--checkpoint", str(smoke_run / "last.pt"), "--out", str(tmp_path / "x"),
                  "--instance-gallery", "all", "--quiet"]) == 2
    assert "--instance-gallery is for fine-grained checkpoints" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
