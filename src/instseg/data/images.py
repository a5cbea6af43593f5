"""Decoding images into the one pixel format the rest of instseg uses, and cheap integrity checks.

:func:`load_image` returns ``HxWx3 uint8 RGB`` of the image **as displayed** (EXIF orientation applied):
grayscale is replicated to 3 channels, an alpha channel is dropped, 16-bit images are scaled to 8 bits
(value / 257, rounded), palette images are expanded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from instseg.errors import DatasetError

# Pillow refuses to open more than twice its MAX_IMAGE_PIXELS (89,478,485): the same limit here, for OpenCV
# too (whose own limit is 2**30), so a 30,000 x 30,000 "decompression bomb" never reaches a decoder
MAX_IMAGE_PIXELS = int(os.environ.get("INSTSEG_MAX_IMAGE_PIXELS", 2 * 89_478_485))
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg", ".mpo"})
JPEG_EOI = b"\xff\xd9"


def too_many_pixels(path: str | Path, size: str) -> DatasetError:
    return DatasetError(
        f"{path}: the image is too large to decode ({size}; the limit is {MAX_IMAGE_PIXELS:,} pixels, "
        "against decompression bombs): downscale or tile it, or raise INSTSEG_MAX_IMAGE_PIXELS if it is real")


def check_image_pixels(path: str | Path, width: int, height: int) -> None:
    """DatasetError naming the file when ``width x height`` exceeds :data:`MAX_IMAGE_PIXELS`."""
    if width * height > MAX_IMAGE_PIXELS:
        raise too_many_pixels(path, f"{width}x{height} = {width * height:,} pixels")


def check_encoded_pixels(data: bytes, what: str) -> None:
    """The same check on an image held in memory (an embedded PNG), from its header only."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            check_image_pixels(what, *img.size)
    except Image.DecompressionBombError as e:
        raise too_many_pixels(what, str(e)) from e
    except DatasetError:
        raise
    except Exception:  # noqa: BLE001 - not an image Pillow knows: the decoder that follows reports it
        return


def _to_rgb8(arr: np.ndarray) -> np.ndarray:
    """Any decoded array (HxW, HxWx1/2/3/4; uint8/uint16/float) -> HxWx3 uint8, channel order unchanged."""
    if arr.dtype == np.uint16:
        arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        if a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0
        arr = np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] in (1, 2):  # gray or gray+alpha
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def _decode_opencv(path: Path) -> np.ndarray | None:
    """RGB uint8 via OpenCV, which applies the EXIF orientation itself; None when OpenCV cannot decode."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)  # np.fromfile + imdecode: non-ASCII paths work everywhere
    if data.size == 0:
        return None
    # ANYDEPTH|ANYCOLOR keeps 16-bit precision so we round like Pillow; orientation is still applied.
    img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None:
        return None
    if img.ndim == 3 and img.shape[2] == 3:  # cvtColor: 15x faster than a reversed-stride copy
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:  # alpha dropped (as _to_rgb8 would)
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return _to_rgb8(img)


def _decode_pillow(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("RGB")
        elif img.mode in ("I;16", "I;16B", "I;16L"):
            return _to_rgb8(np.asarray(img, dtype=np.uint16))
        elif img.mode == "I":
            return _to_rgb8(np.clip(np.asarray(img), 0, 65535).astype(np.uint16))
        return _to_rgb8(np.asarray(img))


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file to ``HxWx3 uint8 RGB`` with its EXIF orientation applied.

    Raises :class:`DatasetError` naming the file when it is missing, empty or cannot be decoded.
    """
    path = Path(path)
    try:
        found = path.is_file()
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        raise DatasetError(f"{str(path)[:200]}: not a usable file name ({type(e).__name__}: {e})") from e
    if not found:
        raise DatasetError(f"{path}: image not found")
    from instseg.data.imagesize import read_image_header

    try:
        header = read_image_header(path)
    except DatasetError as e:
        if "too large to decode" in str(e):
            raise
        header = None  # not a format Pillow parses: the decoders below say what is wrong
    if header is not None:
        check_image_pixels(path, *header.stored_size)
    try:
        img = _decode_opencv(path)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the file ({e})") from e
    if img is not None:
        return img
    try:
        return _decode_pillow(path)
    except Exception as e:  # Pillow raises many kinds (OSError, ValueError, SyntaxError, DecompressionBomb)
        raise DatasetError(
            f"{path}: cannot decode the image ({type(e).__name__}: {e}); re-export or delete it"
        ) from e


def jpeg_is_truncated(path: str | Path) -> bool:
    """True when a JPEG file lacks its end-of-image marker (reads the last bytes only).

    Some encoders pad after the marker, so the last 64 bytes are searched, not only the final two.
    """
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 64))
        tail = f.read()
    return JPEG_EOI not in tail


def verify_image(path: str | Path) -> str | None:
    """Cheap integrity check without decoding pixels: None when fine, else what is wrong.

    Pillow's ``verify`` checks the structure (PNG chunk CRCs, for instance); JPEGs are also checked for
    their end-of-image marker, the usual sign of a truncated download.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as e:  # Pillow signals corruption with several exception types
        return f"corrupt image ({type(e).__name__}: {e})"
    if path.suffix.lower() in JPEG_SUFFIXES and jpeg_is_truncated(path):
        return "truncated JPEG (no end-of-image marker)"
    return None
