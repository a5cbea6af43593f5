"""The scan cache: per-image results of the dataset checks, keyed on file sizes and mtimes.

One JSON file per split source, written atomically. Where: beside the split's labels folder
(``labels/train2017`` -> ``labels/train2017.instseg.cache``) when that folder is writable, else in
``$INSTSEG_CACHE_DIR`` or ``~/.cache/instseg/scan/`` (or the system temp folder), under a name derived from
the preferred path. JSON, not pickle: a cache file in a shared dataset must not be able to run code.

An entry is valid when the image's and its label file's ``(size, mtime_ns)`` are unchanged and the cache was
written by the same instseg version with the same ``nc``; an invalid entry is simply rescanned.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from instseg.data.types import Finding, ImageRecord, Instance, Severity
from instseg.io import atomic_write_text

CACHE_FORMAT = 1


def cache_key(nc: int) -> dict:
    """What the whole cache depends on besides the files: format, instseg version, number of classes."""
    from instseg import __version__

    return {"format": CACHE_FORMAT, "version": __version__, "nc": int(nc)}


def file_stamp(path: Path | None) -> list | None:
    """``[size, mtime_ns]`` of a file, or None when it does not exist (or ``path`` is None)."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _fallback_dir() -> Path:
    env = os.environ.get("INSTSEG_CACHE_DIR")
    if env:
        return Path(env)
    home = Path(os.path.expanduser("~")) / ".cache" / "instseg" / "scan"
    return home


def cache_candidates(preferred: Path) -> list[Path]:
    """Where the cache of ``preferred`` may live, most preferred first."""
    digest = hashlib.sha1(str(preferred).encode("utf-8")).hexdigest()[:16]
    name = f"{digest}-{preferred.name}"
    return [preferred, _fallback_dir() / name, Path(tempfile.gettempdir()) / "instseg-scan" / name]


def read_cache(preferred: Path, nc: int, images: set[str] | None = None) -> tuple[dict, Path | None]:
    """``(entries {image path: entry}, the file read)``; ``({}, None)`` when there is no valid cache. With
    ``images``, a cache that holds none of them (one a copy of the dataset brought from another path, say)
    is passed over for the next candidate."""
    key = cache_key(nc)
    for path in cache_candidates(preferred):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("entries"), dict):
            if images and not any(k in data["entries"] for k in images):
                continue
            return data["entries"], path
    return {}, None


def _writable_dir(folder: Path) -> bool:
    """True when ``folder`` may be written. A folder without any write permission bit counts as read-only
    even for root (who could write anyway): a dataset marked read-only must stay untouched."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(folder, os.W_OK)


def write_cache(preferred: Path, nc: int, entries: dict) -> Path | None:
    """Write the cache atomically to the first writable candidate; the path written, or None."""
    text = json.dumps({"key": cache_key(nc), "entries": entries}, separators=(",", ":"))
    for i, path in enumerate(cache_candidates(preferred)):
        try:
            if i > 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            if not _writable_dir(path.parent):
                continue
            return atomic_write_text(path, text)
        except OSError:
            continue
    return None


def decode_entry(image: Path, entry: object, stamp: list) -> tuple[ImageRecord | None, list[Finding]] | None:
    """``(record, findings)`` of a cache entry whose stamp is ``stamp``; None when the entry is absent,
    stale or damaged in any way (a hand-edited or foreign cache file is rescanned, never a crash)."""
    if not isinstance(entry, dict) or entry.get("stamp") != _as_lists(stamp):
        return None
    try:
        record = None if entry["record"] is None else record_from_json(image, entry["record"])
        found = [finding_from_json(v) for v in entry["findings"]]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None
    return record, found


def _as_lists(value):
    """``value`` as JSON gives it back (tuples become lists), so a stamp compares equal to its cached copy."""
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    return value


# ----------------------------------------------------------------------------------------- (de)serialization
def instance_to_json(inst: Instance) -> dict:
    rle = None
    if inst.rle is not None:
        counts = inst.rle["counts"]
        rle = {
            "size": list(inst.rle["size"]),
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
        }
    return {
        "cls": inst.cls,
        "polygons": [np.asarray(p, np.float64).ravel().tolist() for p in inst.polygons],
        "rle": rle,
        "bbox": None if inst.bbox is None else np.asarray(inst.bbox, np.float64).tolist(),
        "iscrowd": inst.iscrowd,
        "line": inst.source_line,
    }


def instance_from_json(d: dict) -> Instance:
    return Instance(
        cls=int(d["cls"]),
        polygons=[np.asarray(p, np.float64).reshape(-1, 2) for p in d["polygons"]],
        rle=d["rle"],
        bbox=None if d["bbox"] is None else np.asarray(d["bbox"], np.float64),
        iscrowd=bool(d["iscrowd"]),
        source_line=d["line"],
    )


def record_to_json(rec: ImageRecord) -> dict:
    return {
        "width": rec.width,
        "height": rec.height,
        "label": None if rec.label_path is None else str(rec.label_path),
        "instances": [instance_to_json(i) for i in rec.instances],
    }


def record_from_json(path: Path, d: dict) -> ImageRecord:
    return ImageRecord(
        path=path,
        width=int(d["width"]),
        height=int(d["height"]),
        instances=[instance_from_json(i) for i in d["instances"]],
        label_path=None if d["label"] is None else Path(d["label"]),
    )


def finding_to_json(f: Finding) -> list:
    return [f.severity.value, f.code, f.message, None if f.file is None else str(f.file), f.line, f.action]


def finding_from_json(v: list) -> Finding:
    sev, code, msg, file, line, action = v
    return Finding(Severity(sev), code, msg, None if file is None else Path(file), line, action)
