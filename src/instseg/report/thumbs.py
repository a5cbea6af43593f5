"""Thumbnails: resized JPEGs written once per report folder, shared by every page of that report.

A thumbnail is named after its source path, so the dataset page, the evaluation page and the comparison
page of one report link the same file; it is rewritten only when the source image is newer than it.
The image is decoded as displayed (EXIF orientation applied), like every reader of instseg.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

THUMB_SIDE = 320  # long side in pixels; masks are drawn as vectors on top, so they stay sharp when enlarged
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Thumb:
    """A written thumbnail: its file (relative to the report folder), its size and its scale."""

    rel: str  # e.g. "thumbs/3f2a...c1.jpg"
    width: int
    height: int
    scale: float  # thumbnail px per image px


def thumb_size(width: int, height: int, side: int = THUMB_SIDE) -> tuple[int, int, float]:
    """(thumbnail width, height, scale) of an image of ``width`` x ``height``; never enlarged."""
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale)), scale


def thumb_name(path: Path) -> str:
    return hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:20] + ".jpg"


def write_thumb(report_dir: Path, image: Path, width: int, height: int, side: int = THUMB_SIDE) -> Thumb:
    """The thumbnail of ``image`` (``width`` x ``height`` as displayed) under ``report_dir/thumbs``,
    written unless an up-to-date one exists."""
    from instseg.io import atomic_write

    tw, th, _ = thumb_size(width, height, side)
    rel = f"thumbs/{thumb_name(image)}"
    out = Path(report_dir) / rel
    src = Path(image)
    fresh = out.exists() and (not src.exists() or out.stat().st_mtime >= src.stat().st_mtime)
    if not fresh:
        from PIL import Image

        from instseg.data.images import load_image

        pil = Image.fromarray(load_image(src)).resize((tw, th), Image.Resampling.BILINEAR, reducing_gap=2.0)
        atomic_write(out, lambda f: pil.save(f, format="JPEG", quality=JPEG_QUALITY, optimize=True), binary=True)
    return Thumb(rel=rel, width=tw, height=th, scale=tw / max(width, 1))


__all__ = ["THUMB_SIDE", "Thumb", "thumb_size", "thumb_name", "write_thumb"]
