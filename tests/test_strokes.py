"""Stroke-width normalisation (data/strokes.py) and its browser port (web/strokes.mjs): what a
thick doodle and a thin pen sketch become, and that the page redraws them pixel for pixel alike."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image, ImageDraw

from semi3lib.book.search_page import WEB_DIR
from semi3lib.data.quickdraw import doodle_image, load_quickdraw
from semi3lib.data.strokes import dilate, normalise_strokes, thin
from semi3lib.data.transforms import resize_center_crop, sketch_to_tensor
from tests.test_interactive_export import _js_tensor, _node


def _line(width: int, size: int = 128) -> np.ndarray:
    img = Image.new("L", (size, size), 255)
    ImageDraw.Draw(img).line([(20, 30), (100, 90), (40, 110)], fill=0, width=width)
    return np.asarray(img)


def test_thinning_leaves_a_one_pixel_line_through_a_thick_band():
    band = np.zeros((20, 40), bool)
    band[6:13, 5:35] = True  # a 7-pixel-high bar
    lines = thin(band)
    assert lines.sum() > 0 and (lines & ~band).sum() == 0
    columns = lines[:, 10:30].sum(axis=0)
    assert (columns == 1).all(), columns  # one pixel across, away from the ends


def test_dilation_grows_a_point_into_a_diamond():
    point = np.zeros((9, 9), bool)
    point[4, 4] = True
    grown = dilate(point, 2)
    assert grown.sum() == 13  # 1 + 4 + 8: the cells within city-block distance 2
    assert grown[4, 2] and grown[2, 4] and not grown[2, 2]


def test_the_same_drawing_at_any_pen_width_becomes_nearly_the_same_image():
    thin_pen, thick_pen = normalise_strokes(_line(2)) < 128, normalise_strokes(_line(11)) < 128
    overlap = (thin_pen & thick_pen).sum() / (thin_pen | thick_pen).sum()
    raw = (_line(2) < 128, _line(11) < 128)
    raw_overlap = (raw[0] & raw[1]).sum() / (raw[0] | raw[1]).sum()
    assert overlap > 0.6 > raw_overlap


def test_a_blank_sketch_stays_blank_and_bad_input_is_refused():
    assert (normalise_strokes(np.full((32, 32), 255, np.uint8)) == 255).all()
    with pytest.raises(ValueError, match="uint8"):
        normalise_strokes(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="radius"):
        normalise_strokes(np.zeros((8, 8), np.uint8), radius=-1)
    with pytest.raises(ValueError, match="strokes"):
        sketch_to_tensor(Image.new("L", (8, 8)), 32, "bold")


def test_raw_strokes_leave_the_sketch_as_before():
    img = Image.fromarray(_line(3))
    from semi3lib.data.transforms import image_to_tensor

    assert torch_equal(sketch_to_tensor(img, 64, "raw"), image_to_tensor(img, 64))


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())


STROKES_PROBE = """
import fs from 'node:fs';
const [mod, input, output] = process.argv.slice(2);
const { normaliseStrokes } = await import(mod);
const buf = fs.readFileSync(input);
const [w, h] = [buf.readUInt32LE(0), buf.readUInt32LE(4)];
fs.writeFileSync(output, normaliseStrokes(new Uint8Array(buf.buffer, buf.byteOffset + 8, w * h), w, h));
"""


def _js_normalise(node: str, grey: np.ndarray, tmp_path) -> np.ndarray:
    import struct

    probe = tmp_path / "strokes-probe.mjs"
    probe.write_text(STROKES_PROBE)
    h, w = grey.shape
    (tmp_path / "grey.bin").write_bytes(struct.pack("<II", w, h) + np.ascontiguousarray(grey).tobytes())
    subprocess.run([node, str(probe), str(WEB_DIR / "strokes.mjs"), str(tmp_path / "grey.bin"),
                    str(tmp_path / "lines.bin")], check=True, timeout=60)
    return np.fromfile(tmp_path / "lines.bin", dtype=np.uint8).reshape(h, w)


def test_the_pages_stroke_normalisation_is_pythons_pixel_for_pixel(tmp_path):
    node = _node()
    rng = np.random.default_rng(0)
    images = [_line(w) for w in (1, 4, 9)]
    images.append(rng.integers(0, 256, (37, 53), dtype=np.uint8))  # noise: every neighbourhood case
    blobs = np.full((64, 80), 255, np.uint8)
    for _ in range(6):
        y, x = rng.integers(8, 56), rng.integers(8, 72)
        blobs[y - 6:y + 6, x - 6:x + 6] = rng.integers(0, 150)
    images.append(blobs)
    for grey in images:
        np.testing.assert_array_equal(_js_normalise(node, grey, tmp_path), normalise_strokes(grey))


def test_the_pages_sketch_tensor_redraws_strokes_as_the_model_was_trained(quickdraw_root, tmp_path):
    node = _node()
    quickdraw = load_quickdraw(quickdraw_root)
    for cls in quickdraw.classes[:3]:
        doodle = doodle_image(quickdraw.bitmaps(cls, "test", 1)[0])
        rgba = np.asarray(doodle.convert("RGBA"))
        expected = sketch_to_tensor(doodle, 128, "normalised").numpy()
        np.testing.assert_array_equal(_js_tensor(node, rgba, 128, tmp_path, "normalised"), expected)
    # a doodle's redrawn strokes are thin centre lines, not the blurred band it scales up to
    up = np.asarray(resize_center_crop(doodle, 128))
    assert (normalise_strokes(up) < 128).sum() < (up < 160).sum()
