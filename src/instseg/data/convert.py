"""Dataset conversion between YOLO (data.yaml + polygon labels) and COCO JSON, without silent losses.

* :func:`yolo2coco`: one COCO JSON per split of a data.yaml; ids, boxes and areas as in
  :func:`instseg.data.coco.records_to_coco`; box-only lines are flagged so they convert back to box lines.
* :func:`coco2yolo`: one or several COCO JSONs (one per split) -> ``images/<split>``, ``labels/<split>`` and a
  ``data.yaml``. YOLO holds one polygon per line, so an instance with several parts or holes (or an RLE) is
  joined into one ring with zero-width bridges, and the mask IoU each instance keeps is measured and
  reported. Crowd regions are dropped (YOLO has no ignore regions) and counted.

LabelMe -> YOLO is :mod:`instseg.data.labelme`; mask images -> COCO is :mod:`instseg.data.masks2coco`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instseg.data.coco import CocoDataset, load_coco, records_to_coco, write_json_atomic
from instseg.data.masks import (
    clip_polygon,
    instance_to_rle,
    mask_iou,
    polygons_to_rle,
    polygons_to_single_polygon,
    rle_to_single_polygon,
)
from instseg.data.types import Finding, ImageRecord, Instance, Severity
from instseg.errors import ConversionError, InstsegError
from instseg.io import atomic_write_text, inside

IOU_REPORT_THRESHOLD = 0.99  # instances keeping less mask IoU than this are named in the report
SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass
class InstanceLoss:
    """One converted instance whose mask changed: where it is and the IoU it kept."""

    split: str
    image: str
    image_id: int | None
    annotation_id: int | None
    iou: float


@dataclass
class ConversionReport:
    """What a conversion wrote and what it could not keep exactly."""

    out: Path  # the data.yaml or JSON written
    images: dict[str, int] = field(default_factory=dict)  # split -> images written
    instances: int = 0  # instances written
    joined: int = 0  # instances with several parts, holes or an RLE, written as one bridged ring
    crowd_dropped: int = 0
    ious: list[float] = field(default_factory=list)  # mask IoU kept, one per instance with a mask
    losses: list[InstanceLoss] = field(default_factory=list)  # instances below IOU_REPORT_THRESHOLD
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else 1.0

    @property
    def min_iou(self) -> float:
        return float(np.min(self.ious)) if self.ious else 1.0

    def summary(self, max_listed: int = 20) -> str:
        """Human-readable lines for the CLI."""
        lines = [f"wrote {self.out}"]
        lines += [f"  {split}: {n} images" for split, n in self.images.items()]
        lines.append(
            f"  instances: {self.instances} ({self.joined} joined into one ring: several parts, holes "
            f"or RLE masks)"
        )
        if self.ious:
            lines.append(
                f"  mask IoU kept: mean {self.mean_iou:.6f}, min {self.min_iou:.6f} over "
                f"{len(self.ious)} instances; {len(self.losses)} below {IOU_REPORT_THRESHOLD}"
            )
        for loss in self.losses[:max_listed]:
            lines.append(
                f"    {loss.split} {loss.image} (image id {loss.image_id}, annotation id "
                f"{loss.annotation_id}): IoU {loss.iou:.4f}"
            )
        if len(self.losses) > max_listed:
            lines.append(f"    ... and {len(self.losses) - max_listed} more")
        if self.crowd_dropped:
            lines.append(f"  {self.crowd_dropped} crowd regions dropped (YOLO labels have no ignore regions)")
        lines += [f"  note: {n}" for n in self.notes]
        lines += format_findings(self.findings, max_listed)
        return "\n".join(lines)


def format_findings(findings: Sequence[Finding], max_listed: int = 20) -> list[str]:
    """Indented lines: the count per severity, then the first ``max_listed`` findings."""
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
    if not counts:
        return []
    lines = ["  findings: " + ", ".join(f"{n} {sev}" for sev, n in counts.items())]
    lines += [f"    {f}" for f in findings[:max_listed]]
    if len(findings) > max_listed:
        lines.append(f"    ... and {len(findings) - max_listed} more")
    return lines


# ------------------------------------------------------------------------------------------- yolo -> coco


def common_image_root(records: Sequence[ImageRecord], fallback: Path) -> Path:
    """The deepest folder holding every record's image (``fallback`` when there is no record)."""
    if not records:
        return fallback
    return Path(os.path.commonpath([str(r.path.resolve().parent) for r in records]))


def yolo2coco(
    data_yaml: str | Path,
    out_dir: str | Path,
    *,
    splits: Sequence[str] | None = None,
    use_cache: bool = True,
    findings: list[Finding] | None = None,
) -> dict[str, Path]:
    """Write ``<out_dir>/<split>.json`` for every split of ``data_yaml`` (or only ``splits``); return
    ``{split: json path}``.

    The records are the checked ones of the dataset layer (bad lines skipped and reported: the findings are
    appended to ``findings`` when a list is given; ``use_cache=False`` rescans instead of using the scan
    cache). Image sizes come from file headers with EXIF orientation applied. ``file_name`` s are relative
    to the split's common image folder, which is recorded in the JSON (``info.instseg.images_dir``) so that
    reading the JSON back finds the images.
    """
    from instseg.data.checks import scan_split
    from instseg.data.yaml_config import load_data_yaml

    spec = load_data_yaml(data_yaml)
    wanted = list(splits) if splits else list(spec.split_sources)
    unknown = [s for s in wanted if s not in spec.split_sources]
    if unknown:
        raise ConversionError(f"{spec.yaml_path}: no split {unknown} (it has {list(spec.split_sources)})")
    out = Path(out_dir)
    written: dict[str, Path] = {}
    for split in wanted:
        records, found, _ = scan_split(spec, split, use_cache=use_cache)
        if findings is not None:
            findings.extend(found)
        root = common_image_root(records, spec.root)
        coco = records_to_coco(records, spec.names, image_root=root)
        written[split] = write_json_atomic(out / f"{split}.json", coco)
    if not written:
        raise ConversionError(f"{spec.yaml_path}: no split (train/val/test) to convert")
    return written


# ------------------------------------------------------------------------------------------- coco -> yolo


def guess_split(coco_json: Path) -> str:
    """``train``/``val``/``test`` from a word of the JSON's name (``COCO_mul_val_annos.json`` -> val), else
    from its folder when that is named like a split (``valid/_annotations.coco.json`` -> val), else train."""
    for word in re.split(r"[^a-z]+", coco_json.stem.lower()):
        if word in SPLIT_WORDS:
            return SPLIT_WORDS[word]
    return SPLIT_WORDS.get(coco_json.parent.name.lower(), "train")


def _ring_for(inst: Instance, height: int, width: int) -> tuple[np.ndarray, bool]:
    """(one ring in absolute pixels, whether it had to be joined/traced)."""
    if inst.rle is not None:
        return rle_to_single_polygon(inst.rle)[0], True
    if len(inst.polygons) == 1:
        return np.asarray(inst.polygons[0], np.float64).reshape(-1, 2), False
    return polygons_to_single_polygon(inst.polygons, height, width)[0], True


def place_image(src: Path, dst: Path, symlink: bool) -> None:
    """Copy (or link) ``src`` to ``dst``; an existing ``dst`` (file or link) is replaced, never followed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst = inside(dst.parent.parent.parent, dst)  # <out>/images/<split>/<name>
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if symlink:
        dst.symlink_to(src.resolve())
    else:
        shutil.copy2(src, dst)


def unique_name(path: Path, image_id: object, taken: set[str]) -> str:
    """A file name (no folder part) for ``path`` that no other image of the split uses."""
    name = path.name if path.name not in ("", ".", "..") else f"image_{image_id}.jpg"
    if name in taken:
        name = f"{path.parent.name}_{path.name}"
    if name in taken:
        name = f"{path.stem}_{image_id}{path.suffix}"
    taken.add(name)
    return name


def _check_size(rec: ImageRecord, coco_json: Path, report: ConversionReport) -> None:
    """Warn when the JSON's width/height differ from the image file's (EXIF orientation applied)."""
    from instseg.data.imagesize import read_image_size

    try:
        size = read_image_size(rec.path)
    except InstsegError:
        return  # an unreadable image is the dataset checks' finding when the YOLO dataset is used
    if size != (rec.width, rec.height):
        report.findings.append(
            Finding(
                Severity.WARNING,
                "size-mismatch",
                f"image id {rec.image_id}: the JSON says {rec.width}x{rec.height}, {rec.path.name} is "
                f"{size[0]}x{size[1]} (EXIF orientation applied)",
                coco_json,
                action="labels normalized by the JSON's size; check that the annotations fit the image",
            )
        )


def _convert_split(
    ds: CocoDataset, split: str, out: Path, symlink: bool, report: ConversionReport, taken: set[str]
) -> None:
    from instseg.data.yolo import write_yolo_labels

    coco_json = ds.json_path
    report.findings += ds.findings
    n_images = 0
    for rec, ann_ids in zip(ds.records, ds.annotation_ids):
        if not rec.path.is_file():
            report.findings.append(
                Finding(
                    Severity.ERROR,
                    "image-not-found",
                    f"image id {rec.image_id}: {rec.path} does not exist",
                    coco_json,
                    action="image and its annotations not converted; check --images",
                )
            )
            continue
        _check_size(rec, coco_json, report)
        name = unique_name(rec.path, rec.image_id, taken)
        place_image(rec.path, out / "images" / split / name, symlink)
        lines: list[Instance] = []
        for inst, aid in zip(rec.instances, ann_ids):
            if inst.iscrowd:
                report.crowd_dropped += 1
                continue
            if not inst.has_mask:
                box = np.clip(np.asarray(inst.bbox, np.float64), 0, [rec.width, rec.height] * 2)
                lines.append(Instance(inst.cls, bbox=box))
                continue
            ring, joined = _ring_for(inst, rec.height, rec.width)
            ring = clip_polygon(ring, rec.width, rec.height)
            if len(ring) < 3:
                report.findings.append(
                    Finding(
                        Severity.ERROR,
                        "empty-mask",
                        f"annotation id {aid}: the mask is empty or outside the image",
                        coco_json,
                        action="instance not converted",
                    )
                )
                continue
            report.joined += int(joined)
            if joined or not np.array_equal(ring, inst.polygons[0]):
                iou = mask_iou(
                    instance_to_rle(inst, rec.height, rec.width),
                    polygons_to_rle([ring], rec.height, rec.width),
                )
            else:
                iou = 1.0
            report.ious.append(iou)
            if iou < IOU_REPORT_THRESHOLD:
                report.losses.append(InstanceLoss(split, rec.path.name, rec.image_id, aid, iou))
            lines.append(Instance(inst.cls, polygons=[ring]))
        write_yolo_labels((out / "labels" / split / name).with_suffix(".txt"), lines, rec.width, rec.height)
        report.instances += len(lines)
        n_images += 1
    report.images[split] = report.images.get(split, 0) + n_images
    if ds.records and n_images == 0:
        seen = [r.path.name for r in ds.records[:2]]
        listing = sorted(p.name for p in ds.images_dir.iterdir())[:2] if ds.images_dir.is_dir() else []
        raise ConversionError(
            f"{coco_json}: none of its {len(ds.records)} images was found under {ds.images_dir} (file_name "
            f"{', '.join(map(repr, seen))}; the folder holds {', '.join(map(repr, listing)) or 'nothing'}); "
            "pass the folder of the images with --images")


def write_data_yaml(path: Path, splits: Sequence[str], names: Sequence[str]) -> None:
    import yaml

    data: dict[str, object] = {"path": str(path.parent.resolve())}
    for split in ("train", "val", "test"):
        if split in splits:
            data[split] = f"images/{split}"
    if "val" not in splits and "train" in splits:
        data["val"] = "images/train"
    for split in splits:
        data.setdefault(split, f"images/{split}")
    data["nc"] = len(names)
    data["names"] = {k: n for k, n in enumerate(names)}
    text = "# written by instseg convert coco2yolo\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True
    )
    atomic_write_text(path, text)


def coco2yolo(
    coco_json: str | Path | Sequence[str | Path],
    images_dir: str | Path | Sequence[str | Path | None] | None,
    out_dir: str | Path,
    *,
    splits: Sequence[str] | None = None,
    symlink: bool = False,
) -> ConversionReport:
    """Convert COCO JSON(s) into a YOLO dataset at ``out_dir`` (``data.yaml``, ``images/``, ``labels/``).

    ``coco_json`` / ``images_dir`` are one path each or parallel lists (one pair per split); ``images_dir``
    None means the JSON's folder. ``splits`` names the split of each JSON (default: guessed from the file or
    folder name, else ``train``). Class ids are 0-based and contiguous in category-id order, names from the
    categories; every JSON must have the same categories. Images are copied (``symlink=True``: linked).
    Without a val split, ``val`` in data.yaml points at the train images (said in the report's notes).
    """
    jsons = [Path(coco_json)] if isinstance(coco_json, (str, Path)) else [Path(p) for p in coco_json]
    if images_dir is None or isinstance(images_dir, (str, Path)):
        dirs: list[Path | None] = [Path(images_dir) if images_dir is not None else None] * len(jsons)
    else:
        dirs = [Path(d) if d is not None else None for d in images_dir]
    if not jsons or len(dirs) != len(jsons):
        raise ConversionError(f"give one images folder per COCO JSON: {len(jsons)} JSON, {len(dirs)} folders")
    names_of = list(splits) if splits else [guess_split(p) for p in jsons]
    if len(names_of) != len(jsons):
        raise ConversionError(f"give one split name per COCO JSON: {len(jsons)} JSON, {len(names_of)} splits")
    for name in names_of:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ConversionError(f"split name {name!r} must be letters, digits, '_' or '-'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = ConversionReport(out=out / "data.yaml")
    datasets = [load_coco(path, folder) for path, folder in zip(jsons, dirs)]
    names = datasets[0].names
    for ds in datasets[1:]:
        if ds.names != names:
            raise ConversionError(
                f"{ds.json_path}: categories {ds.names} differ from {names} in "
                f"{jsons[0]}; convert them into separate datasets"
            )
    taken: dict[str, set[str]] = {}  # file names used per split (several JSONs may fill one split)
    for ds, split in zip(datasets, names_of):
        _convert_split(ds, split, out, symlink, report, taken.setdefault(split, set()))
    write_data_yaml(out / "data.yaml", list(dict.fromkeys(names_of)), names)
    if "val" not in names_of:
        report.notes.append(
            "no val split given: data.yaml's val points at the train images "
            "(add one with another --coco/--images pair and --split val)"
        )
    return report
