"""LabelMe JSON -> YOLO segmentation dataset (``instseg convert labelme2yolo``).

A LabelMe file holds ``shapes`` (``label``, ``points`` in absolute pixels, ``shape_type``, ``group_id``),
``imagePath`` (relative to the JSON), ``imageHeight``/``imageWidth`` and optionally the image itself
(``imageData``, base64). Shapes become instances:

* ``polygon`` (3+ points) as is; ``rectangle`` (2 corners) as a 4-point polygon; ``circle`` (centre and a
  point on the rim) as a polygon of the circle's area with enough vertices to stay within 0.1 px of it;
* ``mask``: a base64 PNG covering the box given by its two points, traced into one polygon (holes bridged);
* shapes with the same ``label`` and ``group_id`` are one instance with several parts, joined into one ring;
* ``line``, ``linestrip``, ``point``, ``points`` and unknown types enclose nothing: reported and skipped.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np

from instseg.data.convert import (
    IOU_REPORT_THRESHOLD,
    ConversionReport,
    InstanceLoss,
    place_image,
    unique_name,
    write_data_yaml,
)
from instseg.data.masks import (
    clip_polygon,
    mask_to_rle,
    polygons_to_rle,
    polygons_to_single_polygon,
    rle_to_mask,
    rle_to_single_polygon,
)
from instseg.data.types import Finding, Instance, Severity
from instseg.errors import ConversionError, InstsegError
from instseg.io import atomic_write_bytes, inside

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def circle_polygon(centre: np.ndarray, rim: np.ndarray, max_error: float = 0.1) -> np.ndarray:
    """Regular polygon for the circle through ``rim`` around ``centre`` (absolute pixels).

    It has enough vertices (16..720) that an inscribed polygon would stray at most ``max_error`` px from the
    circle, and its radius is scaled so that its area equals the circle's (no systematic shrinkage).
    """
    r = float(np.hypot(*(np.asarray(rim, float) - np.asarray(centre, float))))
    n = 16 if r <= max_error else int(np.clip(math.ceil(math.pi / math.acos(1 - max_error / r)), 16, 720))
    scale = math.sqrt(2 * math.pi / (n * math.sin(2 * math.pi / n)))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([centre[0] + r * scale * np.cos(t), centre[1] + r * scale * np.sin(t)], axis=1)


def _decode_png(b64: str) -> np.ndarray | None:
    import cv2

    from instseg.data.images import check_encoded_pixels

    try:
        raw = base64.b64decode(b64)
    except (ValueError, TypeError):
        return None
    check_encoded_pixels(raw, "a mask shape's embedded PNG")  # a bomb is refused before decoding
    buf = np.frombuffer(raw, np.uint8)
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None


def _shape_geometry(
    shape: dict, height: int, width: int, where: str, path: Path, findings: list[Finding]
) -> list[np.ndarray] | dict | None:
    """Polygons (absolute pixels) or an RLE for one shape; None when it is skipped (with a finding)."""
    kind = shape.get("shape_type") or "polygon"
    try:
        pts = np.asarray(shape.get("points", []), np.float64).reshape(-1, 2)
    except (ValueError, TypeError):
        pts = np.zeros((0, 2))
    need = {"polygon": 3, "rectangle": 2, "circle": 2, "mask": 2}.get(kind)
    if need is None:
        findings.append(
            Finding(
                Severity.WARNING,
                "unsupported-shape",
                f"{where}: shape_type {kind!r} encloses no area",
                path,
                action="shape skipped (only polygon, rectangle, circle, mask are converted)",
            )
        )
        return None
    if len(pts) < need:
        findings.append(
            Finding(
                Severity.ERROR,
                "bad-shape",
                f"{where}: {kind} with {len(pts)} points ({need} needed)",
                path,
                action="shape skipped",
            )
        )
        return None
    if kind == "polygon":
        return [pts]
    if kind == "rectangle":
        (x1, y1), (x2, y2) = np.sort(pts[:2], axis=0)
        return [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])]
    if kind == "circle":
        return [circle_polygon(pts[0], pts[1])]
    try:
        sub = _decode_png(shape.get("mask") or "")
    except InstsegError as e:
        findings.append(Finding(Severity.ERROR, "bad-shape", f"{where}: {e}", path, action="shape skipped"))
        return None
    if sub is None:
        findings.append(
            Finding(
                Severity.ERROR,
                "bad-shape",
                f"{where}: mask is not a base64 PNG",
                path,
                action="shape skipped",
            )
        )
        return None
    if sub.ndim == 3:
        sub = sub.max(axis=2)
    full = np.zeros((height, width), np.uint8)
    x1, y1 = (int(round(v)) for v in pts[:2].min(axis=0))
    h, w = sub.shape
    ys, xs = slice(max(y1, 0), min(y1 + h, height)), slice(max(x1, 0), min(x1 + w, width))
    full[ys, xs] = sub[ys.start - y1 : ys.stop - y1, xs.start - x1 : xs.stop - x1] != 0
    return mask_to_rle(full)


def _read_labelme(path: Path, findings: list[Finding]) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        findings.append(
            Finding(Severity.ERROR, "unreadable", f"cannot read ({e})", path, action="file skipped")
        )
        return None
    except json.JSONDecodeError as e:
        findings.append(
            Finding(
                Severity.ERROR, "bad-json", f"invalid JSON ({e.msg})", path, e.lineno, action="file skipped"
            )
        )
        return None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        return None  # not a LabelMe file (e.g. some other JSON in the folder): not ours to report
    missing = [k for k in ("imagePath", "imageHeight", "imageWidth") if k not in data]
    if missing:
        findings.append(
            Finding(
                Severity.ERROR,
                "bad-labelme",
                f"LabelMe keys missing: {', '.join(missing)}",
                path,
                action="file skipped",
            )
        )
        return None
    size = (data["imageWidth"], data["imageHeight"])
    from instseg.data.images import MAX_IMAGE_PIXELS

    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size) \
            or size[0] * size[1] > MAX_IMAGE_PIXELS:
        message = (f"imageWidth/imageHeight must be positive integers (at most {MAX_IMAGE_PIXELS:,} pixels in "
                   f"all), got {size[0]!r}/{size[1]!r}")
        findings.append(Finding(Severity.ERROR, "bad-labelme", message, path, action="file skipped"))
        return None
    return data


def labelme2yolo(
    input_dir: str | Path,
    out_dir: str | Path,
    *,
    names: list[str] | None = None,
    val: float = 0.0,
    seed: int = 0,
    symlink: bool = False,
) -> ConversionReport:
    """Convert the LabelMe JSONs under ``input_dir`` into a YOLO dataset at ``out_dir``.

    Classes: ``names`` fixes their order (labels not in it are reported and skipped), else the sorted set of
    labels. ``val`` is the fraction of images drawn (with ``seed``) into the val split; 0 puts all in train.
    """
    if not 0.0 <= val < 1.0:
        raise ConversionError(f"--val {val}: the val fraction must be in [0, 1)")
    input_dir, out = Path(input_dir), Path(out_dir)
    files = sorted(input_dir.rglob("*.json")) if input_dir.is_dir() else []
    if not files:
        raise ConversionError(f"{input_dir}: no LabelMe .json files found")
    report = ConversionReport(out=out / "data.yaml")
    docs = [(p, d) for p in files if (d := _read_labelme(p, report.findings)) is not None]
    if not docs:
        raise ConversionError(f"{input_dir}: none of the {len(files)} JSON files is a LabelMe file")
    labels = sorted({str(s.get("label")) for _, d in docs for s in d["shapes"] if isinstance(s, dict)})
    names = list(names) if names else labels
    index = {n: k for k, n in enumerate(names)}
    order = np.random.default_rng(seed).permutation(len(docs))
    n_val = int(round(val * len(docs)))
    split_of = {int(i): ("val" if rank < n_val else "train") for rank, i in enumerate(order)}
    taken: dict[str, set[str]] = {"train": set(), "val": set()}
    for k, (path, data) in enumerate(docs):
        _convert_one(path, data, split_of[k], out, index, symlink, report, taken[split_of[k]])
    splits = [s for s in ("train", "val") if report.images.get(s)]
    if not splits:
        paths = [repr(str(d["imagePath"])) for _, d in docs[:2]]
        raise ConversionError(
            f"{input_dir}: none of the {len(docs)} LabelMe files has its image (imagePath {', '.join(paths)}, "
            "relative to each JSON, not found and no imageData); put the images where imagePath says")
    write_data_yaml(out / "data.yaml", splits or ["train"], names)
    if "val" not in splits:
        report.notes.append("no val split: data.yaml's val points at the train images (use --val 0.2)")
    return report


def _image_for(
    path: Path, data: dict, split: str, out: Path, symlink: bool, report: ConversionReport, taken: set[str]
) -> Path | None:
    from instseg.data.imagesize import read_image_size

    rel = str(data["imagePath"]).replace("\\", "/")
    suffix = Path(rel).suffix.lower()
    suffix = suffix if suffix in IMAGE_SUFFIXES else ".jpg"
    name = unique_name(path.with_suffix(suffix), len(taken), taken)  # the JSON's own name, not imagePath
    dst = inside(out, out / "images" / split / name)
    try:  # reading may leave the folder (../images/a.jpg); writing never does
        src = (path.parent / rel).resolve()
        exists = src.is_file()
        unusable = None
    except (OSError, UnicodeError, ValueError) as e:  # too long for the file system, a lone surrogate, a NUL
        src, exists = None, False
        why = e.strerror if isinstance(e, OSError) and e.strerror else getattr(e, "reason", None) or str(e)
        shown = repr(rel) if len(rel) <= 80 else f"{rel[:40]!r}... ({len(rel)} characters)"
        unusable = f"imagePath {shown} is not a usable file name ({why})"
    if exists:
        try:
            size = read_image_size(src)
        except InstsegError:  # the dataset checks report unreadable images when the dataset is used
            size = None
        if size is not None and size != (int(data["imageWidth"]), int(data["imageHeight"])):
            report.findings.append(
                Finding(
                    Severity.WARNING,
                    "size-mismatch",
                    f"imageWidth x imageHeight {data['imageWidth']}x"
                    f"{data['imageHeight']} but {src.name} is {size[0]}x{size[1]} (EXIF applied)",
                    path,
                    action="points are normalized by the JSON's size; check the annotation",
                )
            )
        place_image(src, dst, symlink)
        return dst
    if data.get("imageData"):
        try:
            raw = base64.b64decode(data["imageData"])
        except (ValueError, TypeError):
            raw = b""
        if raw:
            kind = _embedded_suffix(raw)
            if kind is not None and kind != dst.suffix:
                dst = inside(out, dst.with_suffix(kind))
            atomic_write_bytes(dst, raw)
            if unusable:
                report.findings.append(
                    Finding(Severity.WARNING, "bad-image-path", unusable, path,
                            action="the embedded imageData was used; fix imagePath in the JSON")
                )
            return dst
    if unusable:
        report.findings.append(
            Finding(Severity.ERROR, "bad-image-path", f"{unusable} and imageData is empty", path,
                    action="file skipped; set imagePath to the image's file name, relative to the JSON")
        )
        return None
    report.findings.append(
        Finding(
            Severity.ERROR,
            "image-not-found",
            f"{src} does not exist and imageData is empty",
            path,
            action="file skipped",
        )
    )
    return None


def _embedded_suffix(raw: bytes) -> str | None:
    """The file extension of an embedded image from its magic bytes (None when unknown)."""
    for magic, suffix in ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"BM", ".bmp"), (b"II*\x00", ".tif"),
                          (b"MM\x00*", ".tif")):
        if raw.startswith(magic):
            return suffix
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return ".webp"
    return None


def _convert_one(
    path: Path,
    data: dict,
    split: str,
    out: Path,
    index: dict[str, int],
    symlink: bool,
    report: ConversionReport,
    taken: set[str],
) -> None:
    from instseg.data.yolo import write_yolo_labels

    height, width = int(data["imageHeight"]), int(data["imageWidth"])
    image = _image_for(path, data, split, out, symlink, report, taken)
    if image is None:
        return
    groups: dict[tuple, list] = {}
    for k, shape in enumerate(data["shapes"]):
        if not isinstance(shape, dict):
            continue
        where = f"shape {k} ({shape.get('label')!r})"
        label = str(shape.get("label"))
        if label not in index:
            report.findings.append(
                Finding(
                    Severity.ERROR,
                    "unknown-label",
                    f"{where}: label not in --names",
                    path,
                    action="shape skipped; add it to --names",
                )
            )
            continue
        geom = _shape_geometry(shape, height, width, where, path, report.findings)
        if geom is None:
            continue
        gid = shape.get("group_id")
        key = (label, gid) if gid is not None else (label, None, k)
        groups.setdefault(key, []).append(geom)
    instances = []
    for (label, *_), parts in groups.items():
        polys = [p for g in parts if isinstance(g, list) for p in g]
        rles = [g for g in parts if isinstance(g, dict)]
        if rles:  # mask shapes (with any polygons of the same group): trace the union
            union = rle_to_mask(polygons_to_rle(polys, height, width))
            for r in rles:
                union = np.maximum(union, rle_to_mask(r))
            ring, iou = rle_to_single_polygon(mask_to_rle(union))
            report.joined += 1
        elif len(polys) > 1:
            ring, iou = polygons_to_single_polygon(polys, height, width)
            report.joined += 1
        else:
            ring, iou = polys[0], 1.0
        ring = clip_polygon(ring, width, height)
        if len(ring) < 3:
            report.findings.append(
                Finding(
                    Severity.WARNING,
                    "empty-mask",
                    f"{label!r}: the mask is empty or outside the image",
                    path,
                    action="instance skipped",
                )
            )
            continue
        report.ious.append(iou)
        if iou < IOU_REPORT_THRESHOLD:
            report.losses.append(InstanceLoss(split, image.name, None, None, iou))
        instances.append(Instance(index[label], polygons=[ring]))
    write_yolo_labels((out / "labels" / split / image.name).with_suffix(".txt"), instances, width, height)
    report.instances += len(instances)
    report.images[split] = report.images.get(split, 0) + 1
