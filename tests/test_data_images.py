"""load_image: every common image mode comes out as 8-bit RGB/L; broken files raise
UnreadableImageError naming the path."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import truncate, write_photo
from PIL import Image

from semi3lib.data.images import UnreadableImageError, load_image


def _save(img: Image.Image, path, fmt: str, **kw):
    img.save(path, fmt, **kw)
    return path


@pytest.mark.parametrize(
    "mode,fmt,suffix",
    [("L", "PNG", ".png"), ("P", "PNG", ".png"), ("RGBA", "PNG", ".png"), ("LA", "PNG", ".png"),
     ("CMYK", "JPEG", ".jpg"), ("CMYK", "TIFF", ".tif"), ("I;16", "PNG", ".png"), ("1", "PNG", ".png"),
     ("RGB", "JPEG", ".jpg")],
)
def test_image_modes_load_as_8bit_rgb_and_grey(tmp_path, mode, fmt, suffix):
    base = Image.new("RGB", (20, 10), (200, 100, 50))
    if mode == "I;16":
        src = Image.fromarray(np.full((10, 20), 40000, np.uint16))
        assert src.mode.startswith("I;16")
    else:
        src = base.convert(mode)
    path = _save(src, tmp_path / f"img{suffix}", fmt)
    for out_mode in ("RGB", "L"):
        img = load_image(path, out_mode)
        assert img.mode == out_mode and img.size == (20, 10)
    if mode == "I;16":  # scaled to 8 bits, not clipped to white
        assert abs(int(np.asarray(load_image(path, "L"))[0, 0]) - round(40000 / 257)) <= 1


def test_transparent_background_becomes_white(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.putpixel((3, 3), (0, 0, 0, 255))
    arr = np.asarray(load_image(_save(rgba, tmp_path / "t.png", "PNG"), "L"))
    assert arr[0, 0] == 255 and arr[3, 3] == 0
    pal = Image.new("P", (8, 8), 0)  # index 0: black but transparent; index 1: opaque black
    pal.putpalette([0, 0, 0, 0, 0, 0])
    pal.putpixel((3, 3), 1)
    arr = np.asarray(load_image(_save(pal, tmp_path / "p.png", "PNG", transparency=0), "L"))
    assert arr[0, 0] == 255 and arr[3, 3] == 0


def test_16bit_palette_and_cmyk_values_are_sensible(tmp_path):
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    r, g, b = load_image(_save(cmyk, tmp_path / "c.jpg", "JPEG", quality=95), "RGB").getpixel((1, 1))
    assert r > 200 and g < 60 and b < 60


def test_truncated_jpeg_raises_unreadable_image_error_with_path(tmp_path):
    path = truncate(write_photo(tmp_path / "t.jpg", 0, (128, 96)))
    with pytest.raises(UnreadableImageError) as err:
        load_image(path)
    assert err.value.path == path and str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\0\0garbage"])
def test_garbage_and_missing_files_raise_unreadable_image_error(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(UnreadableImageError):
        load_image(path)
    with pytest.raises(UnreadableImageError):
        load_image(tmp_path / "missing.png")


def test_unreadable_image_error_is_a_value_error_for_the_cli():
    assert issubclass(UnreadableImageError, ValueError)
