"""The content hash of a COCO ground truth: what proves two runs were scored on the same val images.

``gt_sha256(gt)`` is the sha256 of the canonical JSON of the ground truth's ``images`` (id, bare file name,
width, height), ``annotations`` (image id, category id, segmentation, bbox, area, iscrowd) and
``categories`` (id, name): key order, whitespace and the absolute location of the dataset do not change it.
This module imports nothing of instseg, so any layer may call :func:`add_gt_sha256` where it writes
``metrics.json``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePath

_ANN_KEYS = ("image_id", "category_id", "segmentation", "bbox", "area", "iscrowd")


def _round(v):
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, list):
        return [_round(x) for x in v]
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def canonical_gt(gt: dict) -> dict:
    """The part of a COCO ground truth that scoring depends on, in a fixed order."""
    images = sorted(({"id": int(i["id"]), "file_name": PurePath(str(i.get("file_name", ""))).name,
                      "width": int(i["width"]), "height": int(i["height"])} for i in gt.get("images", [])),
                    key=lambda i: i["id"])
    anns = [{k: _round(a.get(k)) for k in _ANN_KEYS} for a in gt.get("annotations", [])]
    anns.sort(key=lambda a: (a["image_id"], a["category_id"], json.dumps(a, sort_keys=True)))
    cats = sorted(({"id": int(c["id"]), "name": str(c["name"])} for c in gt.get("categories", [])),
                  key=lambda c: c["id"])
    return {"images": images, "annotations": anns, "categories": cats}


def gt_sha256(gt: dict | str | Path) -> str:
    """sha256 (hex) of the canonical form of ``gt`` (a COCO dict or a COCO JSON file)."""
    if not isinstance(gt, dict):
        gt = json.loads(Path(gt).read_text(encoding="utf-8"))
    blob = json.dumps(canonical_gt(gt), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def add_gt_sha256(metrics: dict, gt: dict) -> dict:
    """``metrics`` (a metrics.json dict) with ``gt_sha256`` of the ground truth it was scored on."""
    return {**metrics, "gt_sha256": gt_sha256(gt)}


__all__ = ["gt_sha256", "add_gt_sha256", "canonical_gt"]
