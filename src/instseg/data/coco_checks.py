"""Dataset checks for a COCO instance JSON (``instseg doctor --coco ann.json``).

The JSON is read by :func:`instseg.data.coco.load_coco` (which reports annotation-level problems); here each
image is checked like a YOLO one (missing, corrupt, tiny, EXIF rotation, non-RGB modes) and, in addition,
its size on disk is compared with the JSON's ``width``/``height`` that the geometry refers to. Files in the
images folder that the JSON does not list are reported (INFO, ignored), and so is the mapping of category
ids to instseg's 0-based class indices.
"""

from __future__ import annotations

from pathlib import Path

from instseg.data.checks import MIN_IMAGE_SIZE, DatasetReport, SplitSummary, _f
from instseg.data.types import Finding, Severity
from instseg.data.yaml_config import DatasetSpec, is_image_file


def _check_coco_image(path: Path, json_w: int, json_h: int) -> tuple[bool, list[Finding]]:
    """(usable, findings) for one image listed in a COCO file."""
    from instseg.data.images import verify_image
    from instseg.data.imagesize import read_image_header
    from instseg.errors import DatasetError

    if not path.is_file():
        return False, []  # load_coco already reported it
    try:
        header = read_image_header(path)
    except DatasetError as e:
        return False, [_f(Severity.ERROR, "corrupt-image", str(e).split(": ", 1)[-1], path, "image skipped")]
    problem = verify_image(path)
    if problem is not None:
        return False, [_f(Severity.ERROR, "corrupt-image", problem, path, "image skipped; re-export it")]
    w, h = header.width, header.height
    if w < MIN_IMAGE_SIZE or h < MIN_IMAGE_SIZE:
        return False, [
            _f(
                Severity.ERROR,
                "tiny-image",
                f"image is {w}x{h} pixels (< {MIN_IMAGE_SIZE})",
                path,
                "image skipped",
            )
        ]
    out: list[Finding] = []
    if (w, h) != (json_w, json_h):
        stored = header.stored_size
        hint = " (the JSON has the size before EXIF rotation)" if stored == (json_w, json_h) else ""
        msg = f"image is {w}x{h} but the COCO file says {json_w}x{json_h}{hint}"
        out.append(
            _f(
                Severity.ERROR,
                "size-mismatch",
                msg,
                path,
                "image skipped: its annotations would be misplaced",
            )
        )
        return False, out
    if header.orientation != 1:
        out.append(
            _f(Severity.INFO, "exif-rotation", f"EXIF orientation {header.orientation}", path, "honoured")
        )
    if header.mode != "RGB":
        out.append(
            _f(Severity.INFO, "image-mode", f"image mode {header.mode}", path, "converted to 8-bit RGB")
        )
    return True, out


def scan_coco(json_path: str | Path, images_dir: str | Path | None = None) -> DatasetReport:
    """Check a COCO instance JSON and its images; the report renders like a YOLO one (one split)."""
    from instseg.data.coco import load_coco

    coco = load_coco(json_path, images_dir)
    json_path = Path(json_path).resolve()
    root = Path(coco.images_dir).resolve()
    split = json_path.stem
    spec = DatasetSpec(yaml_path=json_path, root=root, names=list(coco.names), split_sources={split: [root]})
    summary = SplitSummary(name=split, class_counts=[0] * len(coco.names))
    findings: list[Finding] = list(coco.findings)
    ids = list(coco.category_ids)
    if ids != list(range(len(ids))):
        shown = ", ".join(f"{cid}->{k}" for k, cid in enumerate(ids[:8])) + (" ..." if len(ids) > 8 else "")
        more = " ..." if len(ids) > 8 else ""
        msg = f"category ids {ids[:8]}{more} are mapped to class indices 0..{len(ids) - 1}"
        findings.append(_f(Severity.INFO, "category-ids", msg, json_path, shown))
    listed = set()
    for rec in coco.records:
        listed.add(rec.path.resolve())
        usable, found = _check_coco_image(rec.path, rec.width, rec.height)
        findings += found
        if not usable:
            summary.skipped_images += 1
            continue
        summary.images += 1
        summary.instances += len(rec.instances)
        summary.box_only += sum(not i.has_mask for i in rec.instances)
        for inst in rec.instances:
            summary.class_counts[inst.cls] += 1
        if rec.instances:
            summary.labelled += 1
        else:
            summary.background += 1
            findings.append(
                _f(Severity.INFO, "no-annotations", "no annotation", rec.path, "used as a background image")
            )
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if p.is_file() and is_image_file(p) and p.resolve() not in listed:
                findings.append(
                    _f(Severity.INFO, "unlisted-image", f"not listed in {json_path.name}", p, "ignored")
                )
    if summary.box_only and summary.instances > summary.box_only:
        msg = f"{summary.box_only} box-only annotations among {summary.instances}"
        findings.append(
            _f(
                Severity.WARNING,
                "mixed-box-polygon",
                msg,
                json_path,
                "box-only instances are kept without a mask",
            )
        )
    if not summary.images:
        findings.append(_f(Severity.FATAL, "empty-split", "no usable image", json_path, "check --images"))
    return DatasetReport(spec=spec, splits={split: summary}, findings=findings)
