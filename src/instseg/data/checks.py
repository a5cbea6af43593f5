"""Dataset checks: the clean records of a split (:func:`load_split`) and the report of ``instseg doctor``
(:func:`scan_dataset`).

Per image (cached, see :mod:`instseg.data.scan_cache`): missing, unreadable or corrupt files and truncated
JPEGs (ERROR, image skipped), images under :data:`MIN_IMAGE_SIZE` pixels (ERROR, skipped), EXIF rotation
(INFO, honoured), grayscale / RGBA / 16-bit / palette images (INFO, converted to 8-bit RGB), the label lines
(see :mod:`instseg.data.yolo` and :mod:`instseg.data.schema`), no label file or an empty one (INFO, a
background image). Per split: files that are not images (INFO, ignored), label files without an image
(WARNING, ignored; only for splits given as folders), duplicate file stems (WARNING), box-only lines mixed
with polygons (WARNING: those instances have no mask), a split without any label (FATAL for train, ERROR
for val, INFO for test).
Per dataset: the notes of data.yaml resolution (INFO), missing train (FATAL) or val (ERROR), images shared
by train and val (WARNING), classes with no instance in train (INFO).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from instseg.data import scan_cache as sc
from instseg.data.types import Finding, ImageRecord, Severity
from instseg.data.yaml_config import DatasetSpec, label_path_for, load_data_yaml, split_files
from instseg.errors import DatasetError

MIN_IMAGE_SIZE = 10  # pixels; a smaller width or height is rejected
LABEL_SUFFIXES = (".txt", ".jsonl")
_MODE_NOTES = {
    "L": "grayscale",
    "LA": "grayscale with alpha",
    "RGBA": "RGBA",
    "P": "palette",
    "PA": "palette with alpha",
    "I;16": "16-bit",
    "I;16B": "16-bit",
    "I;16L": "16-bit",
    "I": "32-bit integer",
    "F": "floating point",
    "CMYK": "CMYK",
    "1": "1-bit",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "RGBX": "RGBX",
}


@dataclass
class SplitSummary:
    """Counts for one split (after the checks)."""

    name: str
    images: int = 0  # usable images
    skipped_images: int = 0
    labelled: int = 0  # usable images with at least one instance
    background: int = 0  # usable images without instance (no label file, or an empty one)
    instances: int = 0
    box_only: int = 0
    class_counts: list[int] = field(default_factory=list)
    cache_hits: int = 0  # images whose checks came from the scan cache
    cache_path: Path | None = None


@dataclass
class DatasetReport:
    """Everything ``instseg doctor`` shows about a dataset."""

    spec: DatasetSpec
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def counts(self) -> dict[Severity, int]:
        c = Counter(f.severity for f in self.findings)
        return {s: c.get(s, 0) for s in Severity}

    @property
    def fatal(self) -> bool:
        return any(f.severity is Severity.FATAL for f in self.findings)


def _f(
    sev: Severity, code: str, msg: str, file: Path | None = None, action: str = "", line: int | None = None
) -> Finding:
    return Finding(severity=sev, code=code, message=msg, file=file, line=line, action=action)


def find_label_file(image: Path) -> Path | None:
    """The label file of an image: ``labels/.../<stem>.txt`` (YOLO), else ``<stem>.jsonl`` (instance
    schema, see :mod:`instseg.data.schema`); None when neither exists."""
    base = label_path_for(image)
    for suffix in LABEL_SUFFIXES:
        cand = base.with_suffix(suffix)
        if cand.is_file():
            return cand
    return None


def check_image(image: Path, nc: int) -> tuple[ImageRecord | None, list[Finding]]:
    """Check one image and read its labels: (record or None when the image is skipped, findings)."""
    from instseg.data.images import MAX_IMAGE_PIXELS, verify_image
    from instseg.data.imagesize import read_image_header
    from instseg.data.schema import parse_instance_jsonl
    from instseg.data.yolo import parse_yolo_labels

    if not image.is_file():
        return None, [
            _f(Severity.ERROR, "missing-image", "listed image does not exist", image, "image skipped")
        ]
    try:
        header = read_image_header(image)
    except DatasetError as e:
        code = "image-too-large" if "too large to decode" in str(e) else "corrupt-image"
        return None, [_f(Severity.ERROR, code, str(e).split(": ", 1)[-1], image, "image skipped")]
    if header.width * header.height > MAX_IMAGE_PIXELS:
        msg = f"image is {header.width}x{header.height} = {header.width * header.height:,} pixels (> {MAX_IMAGE_PIXELS:,})"
        return None, [_f(Severity.ERROR, "image-too-large", msg, image,
                         "image skipped (a decompression bomb?); downscale or tile it, or raise INSTSEG_MAX_IMAGE_PIXELS")]
    problem = verify_image(image)
    if problem is not None:
        return None, [_f(Severity.ERROR, "corrupt-image", problem, image, "image skipped; re-export it")]
    w, h = header.width, header.height
    if w < MIN_IMAGE_SIZE or h < MIN_IMAGE_SIZE:
        msg = f"image is {w}x{h} pixels (< {MIN_IMAGE_SIZE})"
        return None, [_f(Severity.ERROR, "tiny-image", msg, image, "image skipped")]
    findings: list[Finding] = []
    if header.orientation != 1:
        msg = f"EXIF orientation {header.orientation}: stored {header.stored_size[0]}x{header.stored_size[1]}"
        findings.append(
            _f(Severity.INFO, "exif-rotation", msg, image, f"rotated to {w}x{h}; labels read in that frame")
        )
    if header.mode != "RGB":
        kind = _MODE_NOTES.get(header.mode, header.mode)
        findings.append(
            _f(
                Severity.INFO,
                "image-mode",
                f"{kind} image (mode {header.mode})",
                image,
                "converted to 8-bit RGB",
            )
        )
    label = find_label_file(image)
    record = ImageRecord(path=image, width=w, height=h, label_path=label)
    if label is None:
        findings.append(
            _f(Severity.INFO, "no-label-file", "no label file", image, "used as a background image")
        )
        return record, findings
    parse = parse_instance_jsonl if label.suffix == ".jsonl" else parse_yolo_labels
    record.instances, line_findings = parse(label, w, h, nc)
    findings += line_findings
    if not record.instances and not line_findings:
        findings.append(
            _f(Severity.INFO, "empty-label-file", "empty label file", label, "used as a background image")
        )
    return record, findings


def _cache_anchor(spec: DatasetSpec, split: str) -> Path:
    """The preferred cache file of a split: beside its first labels folder (or its .txt list)."""
    src = spec.split_sources[split][0]
    if src.is_file():
        return src.with_suffix(".instseg.cache")
    labels = label_path_for(src / "x.jpg").parent
    if labels.parent == src:  # images not under an images/ folder: labels live beside them
        return src.parent / f"{src.name}.instseg.cache"
    return labels.parent / f"{labels.name}.instseg.cache"


def _orphan_labels(images: list[Path], used: set[Path]) -> list[Path]:
    expected = {os.path.splitext(os.fspath(label_path_for(p)))[0] for p in images}
    dirs = {os.path.dirname(e) for e in expected}
    out = []
    for d in sorted(dirs):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            stem, suffix = os.path.splitext(name)
            if suffix in LABEL_SUFFIXES and name != "classes.txt" and os.path.join(d, stem) not in expected:
                out.append(Path(d, name))
    return sorted(p for p in out if p not in used)


def _split_checks(
    spec: DatasetSpec, split: str, images: list[Path], records: list[ImageRecord], summary: SplitSummary
) -> list[Finding]:
    findings: list[Finding] = []
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for p in images:
        by_stem[p.stem].append(p)
    for stem, paths in sorted(by_stem.items()):
        if len(paths) < 2:
            continue
        labels = {label_path_for(p) for p in paths}
        if len(labels) < len(paths):
            msg = (
                f"{len(paths)} images share the stem '{stem}' and so the label file "
                f"{label_path_for(paths[0]).name}: {', '.join(p.name for p in paths)}"
            )
            findings.append(
                _f(
                    Severity.WARNING,
                    "duplicate-stem",
                    msg,
                    paths[0],
                    "all of them get the same labels; rename them",
                )
            )
        else:
            where = ", ".join(str(p) for p in paths)
            msg = f"{len(paths)} images share the stem '{stem}' in different folders: {where}"
            findings.append(
                _f(
                    Severity.WARNING,
                    "duplicate-stem",
                    msg,
                    paths[0],
                    "kept; labels would collide if the folders were flattened (e.g. by a conversion)",
                )
            )
    used = {r.label_path for r in records if r.label_path is not None}
    # Label files without an image are only looked for when the split is made of whole folders: a .txt list
    # may select part of a folder whose other labels belong to another split.
    folders_only = all(src.is_dir() for src in spec.split_sources[split])
    for orphan in _orphan_labels(images, used) if folders_only else []:
        findings.append(_f(Severity.WARNING, "orphan-label", "label file has no image", orphan, "ignored"))
    poly = summary.instances - summary.box_only
    if summary.box_only and poly:
        files = sorted({str(r.label_path) for r in records if any(not i.has_mask for i in r.instances)})
        msg = (
            f"split '{split}' mixes {summary.box_only} box-only instances with {poly} instances with masks "
            f"(first: {files[0]})"
        )
        findings.append(
            _f(
                Severity.WARNING,
                "mixed-box-polygon",
                msg,
                action="box-only instances are kept without a mask",
            )
        )
    elif summary.box_only:
        msg = f"split '{split}' has only box labels ({summary.box_only}): no instance has a mask"
        findings.append(
            _f(
                Severity.ERROR,
                "boxes-only",
                msg,
                action="segmentation cannot be learned from it; add polygons",
            )
        )
    if records and not used:
        severity = {"train": Severity.FATAL, "val": Severity.ERROR}.get(split, Severity.INFO)
        orphans = _orphan_labels(images, used) if folders_only else []
        msg = (f"split '{split}' has no label files ({len(records)} images; {records[0].path.name} would be "
               f"labelled by {label_path_for(records[0].path)}"
               + (f"; label files seen there: {', '.join(p.name for p in orphans[:2])}" if orphans else "") + ")")
        action = {
            "train": "cannot train; check the images/ -> labels/ layout",
            "val": "cannot evaluate; check the images/ -> labels/ layout",
        }.get(split, "unlabelled: usable for prediction only")
        findings.append(_f(severity, "unlabelled-split", msg, action=action))
    elif not records:
        severity = {"train": Severity.FATAL, "val": Severity.ERROR}.get(split, Severity.WARNING)
        findings.append(
            _f(
                severity,
                "empty-split",
                f"split '{split}' has no usable image",
                action="check the paths in data.yaml",
            )
        )
    return findings


def scan_split(
    spec: DatasetSpec, split: str, use_cache: bool = True
) -> tuple[list[ImageRecord], list[Finding], SplitSummary]:
    """Check one split: its usable records (image ids 1..n in path order), findings and counts."""
    images, others = split_files(spec, split)
    summary = SplitSummary(name=split, class_counts=[0] * spec.nc)
    anchor = _cache_anchor(spec, split)
    cached, summary.cache_path = sc.read_cache(anchor, spec.nc, {str(i) for i in images}) if use_cache else ({}, None)
    entries: dict[str, dict] = {}
    records: list[ImageRecord] = []
    findings = [_f(Severity.INFO, "not-an-image", "not an image", p, "ignored") for p in others]
    for image in images:
        stamp = [sc.file_stamp(image), None]
        label = find_label_file(image)
        stamp[1] = None if label is None else [str(label), *(sc.file_stamp(label) or [])]
        entry = cached.get(str(image))
        hit = sc.decode_entry(image, entry, stamp)  # None: absent, stale or damaged -> rescan
        if hit is not None:
            summary.cache_hits += 1
            record, found = hit
        else:
            record, found = check_image(image, spec.nc)
            entry = {
                "stamp": stamp,
                "record": None if record is None else sc.record_to_json(record),
                "findings": [sc.finding_to_json(f) for f in found],
            }
        entries[str(image)] = entry
        findings += found
        if record is None:
            summary.skipped_images += 1
            continue
        record.image_id = len(records) + 1
        records.append(record)
        summary.instances += len(record.instances)
        summary.box_only += sum(not i.has_mask for i in record.instances)
        for inst in record.instances:
            summary.class_counts[inst.cls] += 1
        if record.instances:
            summary.labelled += 1
        else:
            summary.background += 1
    summary.images = len(records)
    if use_cache and (summary.cache_hits < len(images) or set(entries) != set(cached)):
        summary.cache_path = sc.write_cache(anchor, spec.nc, entries)
    split_findings = _split_checks(spec, split, images, records, summary)
    if any(f.code == "unlabelled-split" for f in split_findings):  # one finding instead of one per image
        findings = [f for f in findings if f.code != "no-label-file"]
    return records, findings + split_findings, summary


def load_split(data: str | Path | DatasetSpec, split: str) -> tuple[list[ImageRecord], list[Finding]]:
    """The checked, cleaned records of one split and the findings about it.

    ``data`` is a data.yaml path or a :class:`DatasetSpec`. Corrupt images and bad label lines are skipped
    and reported; results are cached on file sizes and mtimes, so a second call is fast.
    """
    spec = data if isinstance(data, DatasetSpec) else load_data_yaml(data)
    records, findings, _ = scan_split(spec, split)
    return records, findings


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple] = set()
    out = []
    for f in findings:
        key = (f.severity, f.code, f.message, str(f.file), f.line)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def scan_dataset(spec: DatasetSpec | str | Path, use_cache: bool = True) -> DatasetReport:
    """Check every split of a dataset; findings shared by splits (same images) are reported once."""
    spec = spec if isinstance(spec, DatasetSpec) else load_data_yaml(spec)
    report = DatasetReport(spec=spec)
    findings = [_f(Severity.INFO, "data-yaml", note, spec.yaml_path) for note in spec.notes]
    if "train" not in spec.split_sources:
        findings.append(
            _f(
                Severity.FATAL,
                "no-train-split",
                "data.yaml has no 'train' split",
                spec.yaml_path,
                "add train: <images folder>",
            )
        )
    if "val" not in spec.split_sources:
        findings.append(
            _f(
                Severity.ERROR,
                "no-val-split",
                "data.yaml has no 'val' split",
                spec.yaml_path,
                "training needs one to evaluate; add val: <images folder>",
            )
        )
    paths: dict[str, set[Path]] = {}
    for split in spec.split_sources:
        records, found, summary = scan_split(spec, split, use_cache=use_cache)
        report.splits[split] = summary
        paths[split] = {r.path for r in records}
        findings += found
    if "train" in paths and "val" in paths and paths["train"] & paths["val"]:
        n = len(paths["train"] & paths["val"])
        msg = f"val shares {n} of its {len(paths['val'])} images with train"
        findings.append(
            _f(
                Severity.WARNING,
                "train-val-overlap",
                msg,
                spec.yaml_path,
                "validation scores will be optimistic",
            )
        )
    train = report.splits.get("train")
    if train is not None and train.instances:
        empty = [spec.names[i] for i, c in enumerate(train.class_counts) if c == 0]
        if empty:
            shown = ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else "")
            msg = f"{len(empty)} of {spec.nc} classes have no instance in train: {shown}"
            findings.append(
                _f(Severity.INFO, "unused-classes", msg, spec.yaml_path, "they cannot be learned")
            )
    report.findings = _dedupe(findings)
    return report
