"""The ``compare.json`` schema: what ``instseg compare`` writes and the comparison page reads.

A compare folder holds ``compare.json`` (and the report writes ``report/`` beside it)::

    {
      "schema": "instseg.compare/1",
      "created": "2025-01-31T12:00:00Z",                 # optional
      "protocol": {                                        # what every run shared
        "data": "/abs/path/data.yaml",                     # the dataset (its val split is the ground truth)
        "split": "val",
        "gt_sha256": "ab12...",                            # hash of the COCO ground truth every run was scored on
        "imgsz": 640, "epochs": 50, "schedule": "ultralytics", "augment": "ultralytics",
        "evaluator": "faster-coco-eval",                   # engine name
        "latency": {"device": "0", "batch": 1, "warmup": 3, "images": 20, "imgsz": 640, "threads": 8,
                    "method": "..."},                  # each image timed on its own; median/p90 over those
        "gflops": {"imgsz": 640, "batch": 1, "counter": "torch.utils.flop_counter.FlopCounterMode",
                   "convention": "FLOPs / 1e9, 2 FLOPs per multiply-add", "input": "...", "forward": "..."},
        "bootstrap": {"samples": 1000, "seed": 0, "level": 0.95}
      },
      "class_names": ["fire", ...],                        # order of every per-class array/dict
      "runs": [
        {
          "name": "solov2-nano",                           # unique label on the page
          "architecture": "solov2", "size": "nano",
          "run_dir": "../solov2-nano/exp",                 # relative to compare.json (or absolute)
          "params": 4.3e6,                                 # parameter count
          "gflops": 10.2,                                  # one forward, batch 1, protocol.gflops.imgsz
                                                           # (null + "gflops_error": why it was not counted)
          "latency_ms": 12.5,                              # median ms per image, protocol.latency settings
          "latency": {"median_ms": 12.5, "p90_ms": 14.1, "mean_ms": 12.9, "device": "cuda:0 (NVIDIA ...)",
                      "batch": 1, "images": 20, "distinct_images": 20, "warmup": 3, "threads": 8,
                      "per_image_ms": [12.4, ...]},        # the timed images in order
          "metrics": {                                     # fractions in [0, 1]; null where undefined
            "segm": {"mAP": 0.41, "mAP50": 0.62, "mAP75": 0.44},
            "bbox": {"mAP": 0.45, "mAP50": 0.66, "mAP75": 0.49}
          },
          "ci": {                                          # bootstrap confidence intervals (optional)
            "segm_mAP": [0.38, 0.44], "segm_mAP50": [0.58, 0.65]
          },
          "per_class_ap": {"segm": {"fire": 0.41}, "bbox": {"fire": 0.45}},   # AP50-95 per class name
          "pr": {                                          # optional; else read from run_dir/report/pr.json,
            "segm": {                                      # else computed from run_dir/predictions/val.json
              "recall": [0.0, 0.01, ..., 1.0],             # 101 recall thresholds
              "iou50": {"mean": [...101], "per_class": {"fire": [...101] | null}},
              "iou75": {"mean": [...101], "per_class": {...}}
            }
          }
        }
      ]
    }

Only ``runs[].name`` and ``runs[].metrics.segm.mAP`` are required; everything else is drawn when present.
:func:`load_compare` checks the file and returns it with defaults filled in; a malformed file raises
:class:`~instseg.errors.InstsegError` naming the file, the entry and the fix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from instseg.errors import InstsegError

SCHEMA = "instseg.compare/1"
METRIC_KEYS = ("mAP", "mAP50", "mAP75")


def _num(v) -> float:
    return math.nan if v is None else float(v)


def load_compare(path: str | Path) -> dict:
    """Read and check ``compare.json`` (a file, or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "compare.json"
    if not path.exists():
        raise InstsegError(f"{path}: not found; `instseg compare` writes it (or write one by the schema in "
                           "instseg/report/compare_schema.py)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InstsegError(f"{path}:{e.lineno}: not valid JSON ({e.msg}); fix or regenerate the file") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list) or not doc["runs"]:
        raise InstsegError(f"{path}: expected an object with a non-empty 'runs' list (schema {SCHEMA})")
    if doc.get("schema", SCHEMA) != SCHEMA:
        raise InstsegError(f"{path}: schema {doc.get('schema')!r} is not {SCHEMA!r}; regenerate it with this instseg")
    doc.setdefault("protocol", {})
    doc.setdefault("class_names", [])
    seen = set()
    for i, run in enumerate(doc["runs"]):
        where = f"{path}: runs[{i}]"
        if not isinstance(run, dict) or not isinstance(run.get("name"), str) or not run["name"]:
            raise InstsegError(f"{where}: needs a non-empty string 'name'")
        if run["name"] in seen:
            raise InstsegError(f"{where}: duplicate name {run['name']!r}; names label the page and must differ")
        seen.add(run["name"])
        segm = (run.get("metrics") or {}).get("segm")
        if not isinstance(segm, dict) or "mAP" not in segm:
            raise InstsegError(f"{where} ({run['name']}): needs metrics.segm.mAP (a fraction in [0, 1])")
        for kind in ("segm", "bbox"):
            m = run["metrics"].get(kind)
            if m is None:
                continue
            for k in METRIC_KEYS:
                v = _num(m.get(k))
                if not (math.isnan(v) or 0.0 <= v <= 1.0):
                    raise InstsegError(f"{where} ({run['name']}): metrics.{kind}.{k} = {v} is not a fraction in [0, 1]")
        for key, ci in (run.get("ci") or {}).items():
            if not (isinstance(ci, (list, tuple)) and len(ci) == 2):
                raise InstsegError(f"{where} ({run['name']}): ci.{key} must be [low, high]")
        run.setdefault("architecture", run["name"])
        run.setdefault("size", "")
        if run.get("run_dir"):
            rd = Path(run["run_dir"])
            run["run_dir_abs"] = str(rd if rd.is_absolute() else (path.parent / rd).resolve())
    doc["_path"] = str(path)
    return doc


__all__ = ["SCHEMA", "load_compare", "METRIC_KEYS"]
