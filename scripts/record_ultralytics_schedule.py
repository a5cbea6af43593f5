"""Record Ultralytics' real per-iteration learning rates and momentum into a test fixture.

Drives Ultralytics' own ``SegmentationTrainer`` (its ``_setup_train`` / ``_do_train`` / ``build_optimizer``
code, unchanged) on a tiny synthetic YOLO-seg dataset written to a temporary folder, with a callback that
reads ``optimizer.param_groups`` after every iteration. The values are what the optimizer used for that
iteration (warmup is applied before the forward pass; the step does not change them).

    .venv/bin/python scripts/record_ultralytics_schedule.py   # rewrites tests/engine/fixtures/ultralytics_schedule.json

Needs ``ultralytics`` (``pip install 'instseg[yolo]'``), no network. CPU, about a minute.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "engine" / "fixtures" / "ultralytics_schedule.json"

# Each case: Ultralytics train() overrides + the dataset size. Small epochs/batches keep it to seconds.
CASES = [
    {"name": "auto-adamw-linear", "n_train": 8, "nc": 3,
     "args": {"epochs": 3, "batch": 2, "optimizer": "auto"}},
    {"name": "sgd-cosine-warmup1", "n_train": 6, "nc": 2,
     "args": {"epochs": 4, "batch": 2, "optimizer": "SGD", "lr0": 0.02, "lrf": 0.1, "cos_lr": True,
              "warmup_epochs": 1.0, "momentum": 0.9, "weight_decay": 0.001}},
    {"name": "sgd-linear-fractional-warmup", "n_train": 10, "nc": 1,
     "args": {"epochs": 3, "batch": 4, "optimizer": "SGD", "warmup_epochs": 1.5, "nbs": 16}},
]


def write_dataset(root: Path, n_train: int, nc: int, imgsz: int = 64) -> Path:
    """A tiny YOLO-seg dataset: gray images with one bright square each, polygon labels."""
    import cv2

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", 2)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img = np.full((imgsz, imgsz, 3), 100, np.uint8)
            x0, y0 = rng.integers(4, imgsz // 2, size=2)
            s = int(rng.integers(10, imgsz // 3))
            img[y0:y0 + s, x0:x0 + s] = 230
            cv2.imwrite(str(root / "images" / split / f"{k}.png"), img)
            pts = np.array([[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]], float) / imgsz
            cls = k % nc
            (root / "labels" / split / f"{k}.txt").write_text(
                f"{cls} " + " ".join(f"{v:.6f}" for v in pts.ravel()) + "\n")
    yaml_path = root / "data.yaml"
    names = "\n".join(f"  {i}: c{i}" for i in range(nc))
    yaml_path.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return yaml_path


def record_case(case: dict, workdir: Path) -> dict:
    from ultralytics.models.yolo.segment import SegmentationTrainer

    data = write_dataset(workdir / case["name"], case["n_train"], case["nc"])
    overrides = {
        "model": "yolo11n-seg.yaml", "data": str(data), "imgsz": 64, "device": "cpu", "workers": 0,
        "val": False, "plots": False, "save": False, "amp": False, "mosaic": 0.0, "close_mosaic": 0,
        "project": str(workdir / "runs"), "name": case["name"], "verbose": False, "seed": 0,
        "deterministic": False, **case["args"],
    }
    rows: list[dict] = []

    def capture(trainer) -> None:
        groups = trainer.optimizer.param_groups
        rows.append({
            "lr": [float(g["lr"]) for g in groups],
            "momentum": [float(g["momentum"]) if "momentum" in g else float(g["betas"][0]) for g in groups],
            "accumulate": int(trainer.accumulate),
        })

    trainer = SegmentationTrainer(overrides=overrides)
    trainer.add_callback("on_train_batch_end", capture)
    trainer.train()
    groups = trainer.optimizer.param_groups
    return {
        "name": case["name"],
        "n_train": case["n_train"],
        "nc": case["nc"],
        "args": case["args"],
        "nb": len(trainer.train_loader),
        "optimizer": type(trainer.optimizer).__name__,
        "group_names": [g.get("param_group") for g in groups],
        "weight_decay": [float(g["weight_decay"]) for g in groups],
        "initial_lr": [float(g["initial_lr"]) for g in groups],
        "iterations": rows,
    }


def main() -> int:
    import ultralytics

    with tempfile.TemporaryDirectory() as tmp:
        cases = [record_case(c, Path(tmp)) for c in CASES]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"ultralytics_version": ultralytics.__version__, "cases": cases}, indent=1))
    print(f"wrote {OUT} ({sum(len(c['iterations']) for c in cases)} iterations, ultralytics {ultralytics.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
