from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from instseg.data.imagesize import read_image_header, read_image_size
from instseg.errors import DatasetError


def _save(path: Path, size=(40, 30), mode="RGB", orientation: int | None = None, **kw) -> Path:
    w, h = size
    arr = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    img = (
        Image.fromarray(arr).convert(mode)
        if mode != "I;16"
        else Image.fromarray((arr[..., 0].astype(np.uint16) * 257))
    )
    if orientation is not None:
        exif = img.getexif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    img.save(path, **kw)
    return path


@pytest.mark.parametrize("suffix", ["jpg", "png", "bmp", "tif", "webp"])
@pytest.mark.parametrize("size", [(40, 30), (7, 123)])
def test_size_of_formats(tmp_path, suffix, size):
    path = _save(tmp_path / f"a.{suffix}", size=size)
    assert read_image_size(path) == size


@pytest.mark.parametrize(
    "orientation, expected",
    [
        (1, (40, 30)),
        (2, (40, 30)),
        (3, (40, 30)),
        (4, (40, 30)),
        (5, (30, 40)),
        (6, (30, 40)),
        (7, (30, 40)),
        (8, (30, 40)),
    ],
)
@pytest.mark.parametrize("suffix", ["jpg", "png", "webp"])
def test_exif_orientation_applied(tmp_path, orientation, expected, suffix):
    path = _save(tmp_path / f"r.{suffix}", size=(40, 30), orientation=orientation)
    header = read_image_header(path)
    assert (header.width, header.height) == expected
    assert header.stored_size == (40, 30)
    assert header.orientation == orientation
    # The same size as the decoded, transposed image.
    from PIL import ImageOps

    with Image.open(path) as img:
        assert ImageOps.exif_transpose(img).size == expected


@pytest.mark.parametrize("mode, expected", [("L", "L"), ("RGBA", "RGBA"), ("I;16", "I;16"), ("P", "P")])
def test_mode_reported(tmp_path, mode, expected):
    header = read_image_header(_save(tmp_path / "m.png", mode=mode))
    assert header.mode == expected and header.format == "PNG"


def test_header_only_never_decodes_pixels(tmp_path, monkeypatch):
    """A 6000x4000 PNG: the size comes from the header; decoding the pixels is made to fail."""
    path = tmp_path / "big.png"
    Image.new("RGB", (6000, 4000), (10, 20, 30)).save(path, compress_level=1)

    def no_decode(self, *a, **k):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    monkeypatch.setattr(Image.Image, "getdata", no_decode)
    assert read_image_size(path) == (6000, 4000)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_unreadable_raises_with_file(tmp_path, content):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="bad.jpg: not a readable image"):
        read_image_size(path)


def test_missing_raises(tmp_path):
    with pytest.raises(DatasetError, match="image not found"):
        read_image_size(tmp_path / "none.png")


def test_unreadable_raises_dataset_error_when_image_open_is_patched(tmp_path, monkeypatch):
    """Ultralytics replaces PIL's Image.open with one that imports an optional HEIF plugin on failure."""
    from PIL import Image, UnidentifiedImageError

    from instseg.data.imagesize import read_image_size
    from instseg.errors import DatasetError

    original = Image.open

    def patched(path, *a, **k):
        try:
            return original(path, *a, **k)
        except UnidentifiedImageError:
            raise ModuleNotFoundError("No module named 'pi_heif'") from None

    monkeypatch.setattr(Image, "open", patched)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(DatasetError, match="bad.jpg"):
        read_image_size(bad)
