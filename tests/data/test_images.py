from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from instseg.data.images import jpeg_is_truncated, load_image, verify_image
from instseg.errors import DatasetError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 255, (12, 20, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "mode, make, expected",
    [
        ("RGB", lambda: Image.fromarray(RGB), RGB),
        ("L", lambda: Image.fromarray(RGB[..., 0]), np.repeat(RGB[..., :1], 3, axis=2)),
        (
            "LA",
            lambda: Image.fromarray(np.dstack([RGB[..., 0], RGB[..., 1]]), "LA"),
            np.repeat(RGB[..., :1], 3, axis=2),
        ),
        ("RGBA", lambda: Image.fromarray(np.dstack([RGB, RGB[..., :1]])), RGB),
        (
            "I;16",
            lambda: Image.fromarray(RGB[..., 0].astype(np.uint16) * 257),
            np.repeat(RGB[..., :1], 3, axis=2),
        ),
    ],
)
def test_modes_converted_to_rgb8(tmp_path, mode, make, expected):
    path = tmp_path / "x.png"
    make().save(path)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (12, 20, 3)
    np.testing.assert_array_equal(out, expected)


def test_16bit_rounding(tmp_path):
    values = np.array([[0, 128, 129, 385, 65535, 65534]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    assert load_image(path)[0, :, 0].tolist() == [0, 0, 1, 1, 255, 255]


def test_palette_image(tmp_path):
    img = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), np.asarray(img.convert("RGB")))


# EXIF orientation -> the numpy operation that displays the stored pixels.
ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("suffix", ["png", "jpg"])
@pytest.mark.parametrize("orientation", sorted(ORIENT))
def test_exif_orientation_pixels(tmp_path, orientation, suffix):
    stored = np.zeros((16, 24, 3), np.uint8)
    stored[:8, :8] = 255  # a white block in the stored top-left corner
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o.{suffix}"
    img.save(path, exif=exif.tobytes(), **({"quality": 100} if suffix == "jpg" else {}))
    out = load_image(path)
    assert np.abs(out.astype(int) - ORIENT[orientation](stored)).max() <= (0 if suffix == "png" else 8)


def test_jpeg_decodes_close_to_source(tmp_path):
    path = tmp_path / "a.jpg"
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (16, 1, 3))
    Image.fromarray(smooth).save(path, quality=100)
    assert np.abs(load_image(path).astype(int) - smooth).max() <= 4


def _jpeg(tmp_path: Path, name="a.jpg") -> Path:
    path = tmp_path / name
    Image.fromarray(RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    return path


@pytest.mark.parametrize("keep, truncated", [(1.0, False), (0.7, True), (0.95, True)])
def test_truncated_jpeg(tmp_path, keep, truncated):
    path = _jpeg(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    assert jpeg_is_truncated(path) is truncated
    problem = verify_image(path)
    assert (problem is not None) is truncated
    if truncated:
        assert "truncated JPEG" in problem or "corrupt" in problem


def test_padding_after_eoi_is_fine(tmp_path):
    path = _jpeg(tmp_path)
    path.write_bytes(path.read_bytes() + b"\x00" * 10)
    assert verify_image(path) is None


def test_corrupt_png_detected(tmp_path):
    path = tmp_path / "c.png"
    Image.fromarray(RGB).save(path)
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside the IDAT chunk: the CRC no longer matches
    path.write_bytes(bytes(data))
    assert verify_image(path) is not None


@pytest.mark.parametrize("content", [b"", b"garbage bytes"])
def test_undecodable_raises(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="bad.png"):
        load_image(path)


def test_missing_raises(tmp_path):
    with pytest.raises(DatasetError, match="image not found"):
        load_image(tmp_path / "none.jpg")


def test_unicode_path(tmp_path):
    path = tmp_path / "ünïcødé 画像.png"
    Image.fromarray(RGB).save(path)
    np.testing.assert_array_equal(load_image(path), RGB)
