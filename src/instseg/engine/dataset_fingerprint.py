"""What a run was trained on, so that resuming it on different data is noticed.

A fingerprint per split (train, val): the number of images and label files, a hash of the images' relative
paths and sizes (cheap: no image is read) and a hash of the label files' contents (labels are small). It is
stored in every checkpoint (``ckpt["data_fingerprint"]``) and compared when the run is resumed: a change
stops the resume with the counts and hashes before and after, unless ``force`` (``--force``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from instseg.errors import DatasetError

SPLITS = ("train", "val")


def fingerprint(data: str | Path) -> dict:
    """``{split: {"images", "labels", "images_sha", "labels_sha"}}`` of the dataset ``data`` (a data.yaml)."""
    from instseg.data.checks import find_label_file
    from instseg.data.yaml_config import list_split_images, load_data_yaml

    spec = load_data_yaml(Path(data))
    out: dict[str, dict] = {}
    for split in SPLITS:
        if split not in spec.split_sources:
            continue
        images = list_split_images(spec, split)
        ih, lh, n_labels = hashlib.sha256(), hashlib.sha256(), 0
        for image in images:
            rel = os.path.relpath(image, spec.root)
            try:
                size = image.stat().st_size
            except OSError:
                size = -1
            ih.update(f"{rel}\t{size}\n".encode("utf-8", "surrogateescape"))
            label = find_label_file(image)
            if label is None:
                continue
            n_labels += 1
            lh.update(rel.encode("utf-8", "surrogateescape") + b"\0")
            try:
                lh.update(hashlib.sha256(label.read_bytes()).digest())
            except OSError:
                lh.update(b"unreadable")
        out[split] = {"images": len(images), "labels": n_labels, "images_sha": ih.hexdigest()[:16],
                      "labels_sha": lh.hexdigest()[:16]}
    return out


def describe_change(before: dict, after: dict) -> str:
    """'train: images 8 -> 9, labels sha 1a2b.. -> 3c4d..; val: ...' (only what changed)."""
    parts = []
    for split in sorted(set(before) | set(after)):
        b, a = before.get(split, {}), after.get(split, {})
        diffs = [f"{k.replace('_sha', ' hash')} {b.get(k, '-')} -> {a.get(k, '-')}"
                 for k in ("images", "labels", "images_sha", "labels_sha") if b.get(k) != a.get(k)]
        if diffs:
            parts.append(f"{split}: " + ", ".join(diffs))
    return "; ".join(parts)


def check_resume_data(ckpt: dict, cfg, force: bool = False, log=print) -> dict | None:
    """Compare the dataset ``cfg.data`` now with the fingerprint stored in ``ckpt``.

    Unchanged (or a checkpoint without a fingerprint): returns the current fingerprint. Changed: raises
    :class:`DatasetError` with the counts and hashes before and after, unless ``force``, which logs the same
    line and continues. Returns None when the dataset cannot be fingerprinted (the loader reports why)."""
    try:
        now = fingerprint(cfg.data)
    except DatasetError:
        return None  # loading the dataset raises the real problem with its own message
    before = ckpt.get("data_fingerprint")
    if not before or before == now:
        return now
    change = describe_change(before, now)
    where = f"{cfg.data}: the dataset changed since this run's last checkpoint ({change})"
    if not force:
        raise DatasetError(f"{where}; resuming would mix two datasets in one run: restore the data, start a new "
                           "run, or pass --force to continue on the changed data")
    log(f"warning: {where}; continuing because of --force")
    return now


__all__ = ["fingerprint", "describe_change", "check_resume_data"]
