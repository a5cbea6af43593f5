"""The instance schema: labels that YOLO lines cannot express (masks with holes, several parts, RLE).

An image ``images/<...>/<stem>.<ext>`` may have, instead of ``labels/<...>/<stem>.txt``, a JSON-lines file
``labels/<...>/<stem>.jsonl`` with one JSON object per instance. Geometry is in **absolute pixels of the
displayed image** (EXIF orientation applied); ``class`` is the 0-based index into data.yaml ``names``::

    {"class": 2, "polygon": [[x, y], [x, y], ...]}           one part (a flat [x1, y1, x2, y2, ...] works too)
    {"class": 0, "polygons": [[[x, y], ...], [[x, y], ...]]}  several parts (their union)
    {"class": 1, "mask_path": "masks/0003_1.png"}            binary image at the image size, non-zero =
                                                             object; relative to the .jsonl's folder
    {"class": 1, "rle": {"size": [h, w], "counts": "..."}}    COCO RLE, compressed or uncompressed
    {"class": 3, "bbox": [x1, y1, x2, y2]}                    box only (no mask)

``bbox`` (xyxy) may accompany any geometry; when absent it is derived from the geometry. ``"iscrowd": true``
marks a crowd region (ignored by COCO matching). Blank lines and lines starting with ``#`` are skipped.
Each problem becomes a :class:`Finding` (file, line, action) and the line is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from instseg.data.types import Finding, Instance, Severity
from instseg.data.yolo import COORD_TOLERANCE, MIN_POLYGON_AREA, read_label_text

_GEOMETRY_KEYS = ("polygon", "polygons", "mask_path", "rle")


class _LineError(ValueError):
    """A problem with one line; the message goes into the finding."""


def _polygon(value, width: int, height: int) -> np.ndarray:
    try:
        pts = np.asarray(value, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError) as e:
        raise _LineError(f"polygon is not a list of [x, y] pairs ({e})") from e
    if not np.isfinite(pts).all():
        raise _LineError("polygon has non-finite coordinates")
    tol = COORD_TOLERANCE * np.array([width, height])
    if (pts < -tol).any() or (pts > np.array([width, height]) + tol).any():
        raise _LineError(f"polygon lies outside the {width}x{height} image (absolute pixels expected)")
    pts = np.clip(pts, 0, [width, height])
    if len(np.unique(pts, axis=0)) < 3:
        raise _LineError("polygon has fewer than 3 distinct points")
    x, y = pts[:, 0], pts[:, 1]
    if abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2 < MIN_POLYGON_AREA:
        raise _LineError("polygon of zero area")
    return pts


def _mask_rle(path: Path, base: Path, width: int, height: int) -> dict:
    from instseg.data.images import load_image
    from instseg.data.masks import mask_to_rle
    from instseg.errors import DatasetError

    mask_file = (base / path) if not path.is_absolute() else path
    try:
        mask = load_image(mask_file)[:, :, 0]
    except DatasetError as e:
        raise _LineError(f"mask_path: {e}") from e
    if mask.shape != (height, width):
        raise _LineError(
            f"mask {mask_file} is {mask.shape[1]}x{mask.shape[0]}, the image is {width}x{height}"
        )
    if not mask.any():
        raise _LineError(f"mask {mask_file} is empty")
    return mask_to_rle(mask)


def parse_instance_object(obj, base: Path, width: int, height: int, nc: int) -> Instance:
    """One decoded JSON object -> Instance (absolute pixels). Raises _LineError with the reason."""
    from instseg.data.masks import normalize_rle, polygons_bbox, rle_area, rle_to_bbox

    if not isinstance(obj, dict):
        raise _LineError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - {"class", "bbox", "iscrowd", *_GEOMETRY_KEYS})
    if unknown:
        raise _LineError(f"unknown keys {unknown}; valid: class, {', '.join(_GEOMETRY_KEYS)}, bbox, iscrowd")
    cls = obj.get("class")
    if isinstance(cls, bool) or not isinstance(cls, int):
        raise _LineError(f"'class' must be an integer class id, got {cls!r}")
    if not 0 <= cls < nc:
        raise _LineError(f"class {cls} {'< 0' if cls < 0 else f'>= nc {nc}'} (data.yaml names {nc} classes)")
    given = [k for k in _GEOMETRY_KEYS if k in obj]
    if len(given) > 1:
        raise _LineError(f"give one of {', '.join(_GEOMETRY_KEYS)}, not {' and '.join(given)}")
    inst = Instance(cls=cls, iscrowd=bool(obj.get("iscrowd", False)))
    if given == ["polygon"]:
        inst.polygons = [_polygon(obj["polygon"], width, height)]
    elif given == ["polygons"]:
        if not isinstance(obj["polygons"], list) or not obj["polygons"]:
            raise _LineError("'polygons' must be a non-empty list of polygons")
        inst.polygons = [_polygon(p, width, height) for p in obj["polygons"]]
    elif given == ["mask_path"]:
        if not isinstance(obj["mask_path"], str) or not obj["mask_path"].strip() or len(obj["mask_path"]) > 1024:
            raise _LineError(f"'mask_path' must be the path of a PNG (a string), got {str(obj['mask_path'])[:60]!r}")
        inst.rle = _mask_rle(Path(obj["mask_path"]), base, width, height)
    elif given == ["rle"]:
        try:
            inst.rle = normalize_rle(obj["rle"])
        except (ValueError, TypeError) as e:
            raise _LineError(f"rle: {e}") from e
        if inst.rle["size"] != [height, width]:
            raise _LineError(f"rle size {inst.rle['size']} is not the image's [h, w] = [{height}, {width}]")
        if rle_area(inst.rle) == 0:
            raise _LineError("rle mask is empty")
    if "bbox" in obj:
        try:
            box = np.asarray(obj["bbox"], dtype=np.float64).reshape(4)
        except (TypeError, ValueError) as e:
            raise _LineError(f"'bbox' must be [x1, y1, x2, y2] ({e})") from e
        box = np.clip(box, 0, [width, height, width, height])
        if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            raise _LineError(f"'bbox' {obj['bbox']} is not a box x1 < x2, y1 < y2 inside the image")
        inst.bbox = box
    elif inst.polygons:
        inst.bbox = polygons_bbox(inst.polygons, height, width)
    elif inst.rle is not None:
        inst.bbox = rle_to_bbox(inst.rle)
    else:
        raise _LineError(f"no geometry: give one of {', '.join(_GEOMETRY_KEYS)} or a bbox")
    return inst


def parse_instance_jsonl(
    path: str | Path, width: int, height: int, nc: int
) -> tuple[list[Instance], list[Finding]]:
    """Read an instance-schema label file (see the module doc) for a ``width x height`` image."""
    path = Path(path)
    text, unreadable = read_label_text(path)
    if unreadable is not None:
        return [], [unreadable]
    instances: list[Instance] = []
    findings: list[Finding] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            findings.append(
                Finding(
                    Severity.ERROR,
                    "malformed-line",
                    f"not valid JSON ({e.msg} at column {e.colno})",
                    path,
                    lineno,
                    "line skipped",
                )
            )
            continue
        try:
            inst = parse_instance_object(obj, path.parent, width, height, nc)
        except _LineError as e:
            code = "class-out-of-range" if str(e).startswith("class ") else "invalid-instance"
            findings.append(Finding(Severity.ERROR, code, str(e), path, lineno, "line skipped"))
            continue
        inst.source_line = lineno
        instances.append(inst)
    return instances, findings
