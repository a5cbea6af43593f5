"""Image sizes from file headers, without decoding pixels, with the EXIF orientation applied.

Pillow's ``Image.open`` is lazy: it parses the header (and, for JPEG, the APP1/EXIF segment) and stops
before the pixel data, so reading the size of a 20 MB photo costs a fraction of a millisecond.
The size returned is that of the image **as displayed** (after EXIF rotation), the frame of every label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from instseg.errors import DatasetError

EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientations 5..8 rotate by 90 degrees (width and height swap when displayed).
_TRANSPOSED = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageHeader:
    """What the header of an image file says.

    ``width``/``height`` are those of the displayed image (EXIF applied); ``stored_size`` is (w, h) as
    stored in the file. ``orientation`` is the EXIF tag value (1 = none). ``mode`` is Pillow's mode
    (``RGB``, ``L``, ``RGBA``, ``I;16``...), ``format`` Pillow's format name (``JPEG``, ``PNG``...).
    """

    width: int
    height: int
    orientation: int
    mode: str
    format: str
    stored_size: tuple[int, int]


def exif_orientation(img) -> int:
    """The EXIF orientation (1..8) of an opened Pillow image; 1 when absent or invalid.

    For PNG only an ``eXIf`` chunk placed before the pixel data is seen (where writers put it): Pillow's
    ``getexif`` would otherwise decode the whole image to look for one after it.
    """
    from PIL import Image

    try:
        if img.format == "PNG":
            raw = img.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = exif.get(EXIF_ORIENTATION_TAG, 1)
        else:
            value = img.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a malformed EXIF block must not make the image unreadable
        return 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def read_image_header(path: str | Path) -> ImageHeader:
    """Parse an image's header. Raises :class:`DatasetError` naming the file when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            w, h = img.size
            orientation = exif_orientation(img)
            mode, fmt = img.mode, img.format or path.suffix[1:].upper()
    except FileNotFoundError as e:
        raise DatasetError(f"{path}: image not found") from e
    except Image.DecompressionBombError as e:  # never fall back to decoding it with OpenCV
        from instseg.data.images import too_many_pixels

        raise too_many_pixels(path, _claimed_size(path) or str(e).split(",")[0]) from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, ImportError) as e:
        # ImportError: once Ultralytics is imported, its patched Image.open tries an optional HEIF plugin on
        # any file Pillow cannot identify, and raises ModuleNotFoundError when that plugin is absent.
        header = _size_with_opencv(path)
        if header is None:
            raise DatasetError(f"{path}: not a readable image ({e}); re-export or delete it") from e
        return header
    if orientation in _TRANSPOSED:
        return ImageHeader(h, w, orientation, mode, fmt, (w, h))
    return ImageHeader(w, h, orientation, mode, fmt, (w, h))


def _claimed_size(path: Path) -> str | None:
    """'W x H = N pixels' from a PNG's IHDR (the usual bomb), None for other formats."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    return f"{w}x{h} = {w * h:,} pixels"


def _size_with_opencv(path: Path) -> ImageHeader | None:
    """Fallback for formats Pillow cannot parse (decodes the pixels; OpenCV applies EXIF itself)."""
    import cv2
    import numpy as np

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # COLOR applies EXIF
    if img is None:
        return None
    h, w = img.shape[:2]
    return ImageHeader(w, h, 1, "RGB", path.suffix[1:].upper(), (w, h))


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` in pixels of the displayed image (EXIF orientation applied), from the header."""
    header = read_image_header(path)
    return header.width, header.height
