"""The in-memory records that every reader produces and every consumer reads.

Coordinate conventions (used everywhere in instseg):

* Geometry is in **absolute pixels of the image as displayed**, i.e. after its EXIF orientation has been
  applied (what ``cv2.imread`` and ``PIL.ImageOps.exif_transpose`` return). YOLO's normalized coordinates are
  relative to that image too.
* Polygons are float64 arrays of shape ``(N, 2)`` holding ``(x, y)``; an instance may have several
  (multi-part objects). Holes cannot be expressed by polygons: instances with holes carry an RLE.
* Boxes are ``xyxy`` floats in absolute pixels.
* Class ids are **0-based contiguous indices into ``names``**. COCO category ids only exist in COCO files;
  the writers map ``index -> category id`` explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np


@dataclass
class Instance:
    """One object in one image.

    Exactly one of ``polygons`` (non-empty) or ``rle`` describes the mask; a box-only instance has neither
    and only ``bbox``.
    """

    cls: int
    polygons: list[np.ndarray] = field(default_factory=list)
    rle: dict | None = None  # COCO RLE at the image's size: {"size": [h, w], "counts": bytes|str|list}
    bbox: np.ndarray | None = None  # xyxy, absolute pixels; derived from the geometry when None
    iscrowd: bool = False
    source_line: int | None = None  # 1-based line in the label file, for error messages

    @property
    def has_mask(self) -> bool:
        return bool(self.polygons) or self.rle is not None


@dataclass
class ImageRecord:
    """One image with its instances, as read from disk (no pixels)."""

    path: Path
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)
    label_path: Path | None = None  # None: background image (no label file)
    image_id: int | None = None  # the COCO image id, once one is assigned


class Severity(str, Enum):
    INFO = "info"  # a fact worth knowing (e.g. background images counted)
    WARNING = "warning"  # instseg repaired or skipped something; training goes on
    ERROR = "error"  # something was rejected (an image or a line is skipped)
    FATAL = "fatal"  # the dataset cannot be used as it is; doctor exits 1


@dataclass
class Finding:
    """One problem found in a dataset, with what instseg does about it.

    Rendered as ``file:line: message (action)``, e.g.
    ``labels/img_017.txt:3: class 5 >= nc 3 (data.yaml names 3 classes) -> line skipped``.
    """

    severity: Severity
    code: str  # stable machine-readable kind, e.g. "class-out-of-range"
    message: str
    file: Path | None = None
    line: int | None = None
    action: str = ""

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        tail = f" -> {self.action}" if self.action else ""
        return f"{where}{self.message}{tail}"
