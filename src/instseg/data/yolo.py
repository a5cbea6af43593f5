"""YOLO label files: reading (with line-level checks) and writing.

Line formats of ``labels/<stem>.txt`` (coordinates normalized to 0..1 by the displayed image's width and
height; class ids 0-based):

* polygon: ``class x1 y1 x2 y2 ... xn yn`` (n >= 3) -> an :class:`Instance` with one polygon;
* box only: ``class cx cy w h`` -> an :class:`Instance` with ``bbox`` and no mask.

Every problem becomes a :class:`Finding` naming the file and the 1-based line, and the line is repaired or
skipped as the finding says: malformed lines, class ids outside ``0..nc-1``, coordinates outside 0..1
(clipped when no further out than :data:`COORD_TOLERANCE`, else skipped), polygons of fewer than 3
distinct points or of zero area, zero-size boxes, and duplicate lines (dropped).

The readers return geometry in **absolute pixels** (``x * width``, ``y * height``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from instseg.data.types import Finding, Instance, Severity
from instseg.errors import ConversionError
from instseg.io import atomic_write_text

COORD_TOLERANCE = 0.01  # normalized coordinates in [-0.01, 1.01] are clipped to [0, 1]; further out: skipped
# a label file for 10,000 instances of 100 points is ~18 MB; above this size it is refused before reading
MAX_LABEL_BYTES = int(os.environ.get("INSTSEG_MAX_LABEL_BYTES", 256 * 2**20))
MIN_POLYGON_AREA = 1e-3  # pixels^2; a polygon enclosing less is degenerate (collinear or repeated points)


def _finding(sev: Severity, code: str, msg: str, path: Path, line: int, action: str) -> Finding:
    return Finding(severity=sev, code=code, message=msg, file=path, line=line, action=action)


def _parse_class(token: str) -> int | None:
    """Class id from its token: ``3`` or ``3.0`` -> 3; anything else (``3.5``, ``cat``) -> None."""
    try:
        value = float(token)
    except ValueError:
        return None
    if not math.isfinite(value) or value != int(value):
        return None
    return int(value)


def _shoelace(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def parse_yolo_line(
    text: str, lineno: int, path: Path, width: int, height: int, nc: int
) -> tuple[Instance | None, list[Finding]]:
    """One label line -> (instance or None when skipped, findings). Geometry in absolute pixels."""
    tokens = text.split()
    out: list[Finding] = []
    cls = _parse_class(tokens[0])
    try:
        values = np.array([float(t) for t in tokens[1:]], dtype=np.float64)
    except ValueError:
        values = None
    if cls is None or values is None or not np.isfinite(values).all():
        bad = tokens[0] if cls is None else next(t for t in tokens[1:] if not _is_finite_number(t))
        msg = f"not a number: {bad!r} (expected 'class x1 y1 x2 y2 ...' or 'class cx cy w h')"
        return None, [_finding(Severity.ERROR, "malformed-line", msg, path, lineno, "line skipped")]
    n = len(values)
    if n != 4 and (n < 6 or n % 2):
        why = "an odd number of coordinates" if n % 2 else f"{n} values after the class"
        msg = f"{why}: a polygon needs 3+ x,y pairs, a box 'cx cy w h'"
        return None, [_finding(Severity.ERROR, "malformed-line", msg, path, lineno, "line skipped")]
    if cls < 0 or cls >= nc:
        msg = f"class {cls} {'< 0' if cls < 0 else f'>= nc {nc}'} (data.yaml names {nc} classes)"
        return None, [_finding(Severity.ERROR, "class-out-of-range", msg, path, lineno, "line skipped")]
    if n == 4:
        cx, cy, bw, bh = values
        box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
    else:
        box = values
    lo, hi = float(box.min()), float(box.max())
    if lo < -COORD_TOLERANCE or hi > 1 + COORD_TOLERANCE:
        msg = f"coordinates outside 0..1 (min {lo:.4g}, max {hi:.4g}) beyond the tolerance {COORD_TOLERANCE}"
        return None, [_finding(Severity.ERROR, "coords-out-of-range", msg, path, lineno, "line skipped")]
    if lo < 0 or hi > 1:
        msg = f"coordinates slightly outside 0..1 (min {lo:.4g}, max {hi:.4g})"
        out.append(_finding(Severity.WARNING, "coords-clipped", msg, path, lineno, "clipped to the image"))
        box = np.clip(box, 0.0, 1.0)
    scale = np.array([width, height], dtype=np.float64)
    if n == 4:
        xyxy = box * np.tile(scale, 2)
        if xyxy[2] - xyxy[0] <= 0 or xyxy[3] - xyxy[1] <= 0:
            msg = "box of zero width or height"
            return None, out + [_finding(Severity.ERROR, "zero-area", msg, path, lineno, "line skipped")]
        return Instance(cls=cls, bbox=xyxy, source_line=lineno), out
    pts = box.reshape(-1, 2) * scale
    distinct = len(np.unique(pts, axis=0))
    if distinct < 3:
        msg = f"polygon with {distinct} distinct point{'s' if distinct != 1 else ''} (3 needed)"
        return None, out + [_finding(Severity.ERROR, "degenerate-polygon", msg, path, lineno, "line skipped")]
    if _shoelace(pts) < MIN_POLYGON_AREA:
        msg = "polygon of zero area (its points are collinear)"
        return None, out + [_finding(Severity.ERROR, "zero-area", msg, path, lineno, "line skipped")]
    bbox = np.concatenate([pts.min(0), pts.max(0)])
    return Instance(cls=cls, polygons=[pts], bbox=bbox, source_line=lineno), out


def _is_finite_number(token: str) -> bool:
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False


def parse_yolo_text(
    text: str, path: Path, width: int, height: int, nc: int
) -> tuple[list[Instance], list[Finding]]:
    """Parse the content of a YOLO label file (see :func:`parse_yolo_labels`)."""
    instances: list[Instance] = []
    findings: list[Finding] = []
    seen: dict[tuple[float, ...], int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        tokens = raw.split()
        try:
            key = tuple(float(t) for t in tokens)
        except ValueError:
            key = None
        if key is not None and key in seen:
            msg = f"duplicate of line {seen[key]}"
            findings.append(_finding(Severity.WARNING, "duplicate-line", msg, path, lineno, "line dropped"))
            continue
        inst, found = parse_yolo_line(raw, lineno, path, width, height, nc)
        findings += found
        if inst is not None:
            instances.append(inst)
            if key is not None:
                seen[key] = lineno
    return instances, findings


def parse_yolo_labels(
    path: str | Path, width: int, height: int, nc: int
) -> tuple[list[Instance], list[Finding]]:
    """Read a YOLO label file for an image of ``width x height`` pixels (displayed size) and ``nc`` classes.

    Returns the valid instances (polygons / boxes in absolute pixels, ``source_line`` set) and the findings
    about the lines that were repaired or skipped. An empty file gives no instance (a background image).
    An unreadable file gives one ERROR finding and no instance.
    """
    path = Path(path)
    text, unreadable = read_label_text(path)
    if unreadable is not None:
        return [], [unreadable]
    return parse_yolo_text(text, path, width, height, nc)


def read_label_text(path: Path) -> tuple[str, Finding | None]:
    """A label file's text (BOM stripped), or an ERROR finding when it cannot be read or decoded, or when it
    is larger than :data:`MAX_LABEL_BYTES` (checked with ``os.stat`` before anything is read)."""
    try:
        size = os.stat(path).st_size
        if size > MAX_LABEL_BYTES:
            return "", Finding(Severity.ERROR, "label-too-large",
                               f"label file is {size / 2**20:,.0f} MiB, more than the {MAX_LABEL_BYTES / 2**20:.0f} MiB "
                               "a label file may be (a corrupt or wrong file?)", path, None,
                               "labels of this image ignored; raise INSTSEG_MAX_LABEL_BYTES if it is real")
        return path.read_text(encoding="utf-8-sig"), None
    except (OSError, UnicodeDecodeError) as e:
        return "", Finding(Severity.ERROR, "unreadable-label", f"cannot read the label file ({e})", path, None,
                           "labels of this image ignored")


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def yolo_line(inst: Instance, width: int, height: int) -> str:
    """One instance as a YOLO line (coordinates normalized, 6 decimals).

    Several polygons, or an RLE mask, are joined into one ring with zero-width bridges (holes survive
    even-odd filling); a box-only instance becomes ``class cx cy w h``.
    """
    from instseg.data import masks

    scale = np.array([width, height], dtype=np.float64)
    if inst.polygons:
        if len(inst.polygons) == 1:
            ring = np.asarray(inst.polygons[0], np.float64).reshape(-1, 2)
        else:
            ring, _ = masks.polygons_to_single_polygon(inst.polygons, height, width)
    elif inst.rle is not None:
        ring, _ = masks.rle_to_single_polygon(inst.rle)
    elif inst.bbox is not None:
        x1, y1, x2, y2 = (float(v) for v in inst.bbox)
        box = np.array([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height])
        return f"{inst.cls} {_fmt(np.clip(box, 0.0, 1.0))}"
    else:
        raise ConversionError(f"instance of class {inst.cls} has no polygon, mask or box: nothing to write")
    if len(ring) < 3:
        raise ConversionError(f"instance of class {inst.cls}: its mask is empty or has fewer than 3 points")
    return f"{inst.cls} {_fmt(np.clip(ring / scale, 0.0, 1.0).ravel())}"


def write_yolo_labels(path: str | Path, instances: list[Instance], width: int, height: int) -> None:
    """Write a YOLO label file (atomically; an empty list writes an empty file: a background image)."""
    path = Path(path)
    text = "".join(yolo_line(inst, width, height) + "\n" for inst in instances)
    atomic_write_text(path, text)
