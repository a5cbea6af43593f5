"""A run folder written without training: config.yaml, results.csv, metrics.json and a predictions/val.json
made from the val split's own ground truth (most instances found with a slightly grown mask, some missed,
one false positive per image), so the expected matching is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

COLUMNS = ["epoch", "time", "train/loss", "lr/pg0", "lr/pg1", "lr/pg2", "metrics/segm_mAP", "metrics/segm_mAP50",
           "metrics/segm_mAP75", "metrics/bbox_mAP", "metrics/bbox_mAP50", "metrics/bbox_mAP75", "metrics/fitness",
           "train/loss_mask", "train/loss_cls"]


def make_fake_run(run: Path, data: Path, *, seed: int = 0, found: float = 0.8, epochs: int = 3,
                  exact: bool = False) -> dict:
    """Write the run folder; returns {"tp": n, "fp": n, "missed": n} expected at score >= 0.25 (exactly
    so with ``exact``: found instances are predicted with their own mask, IoU 1)."""
    import cv2

    from instseg.data.masks import mask_to_rle, rle_to_mask
    from instseg.evaluation import write_results_json
    from instseg.report.run_report import load_val

    rng = np.random.default_rng(seed)
    records, names, gt = load_val(data)
    results, tp, fp, missed = [], 0, 0, 0
    by_image: dict[int, list] = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    from instseg.data.masks import instance_to_rle

    for rec in records:
        for inst in rec.instances:
            if inst.iscrowd:
                continue
            rle = instance_to_rle(inst, rec.height, rec.width)
            if rng.random() < found:
                m = rle_to_mask(rle) if exact else cv2.dilate(rle_to_mask(rle), np.ones((3, 3), np.uint8))
                results.append({"image_id": rec.image_id, "category_id": inst.cls + 1,
                                "score": float(rng.uniform(0.5, 1.0)), "segmentation": mask_to_rle(m)})
                tp += 1
            else:
                missed += 1
        m = np.zeros((rec.height, rec.width), np.uint8)  # a false positive in the top-left corner
        m[: max(4, rec.height // 8), : max(4, rec.width // 8)] = 1
        results.append({"image_id": rec.image_id, "category_id": int(rng.integers(len(names))) + 1,
                        "score": float(rng.uniform(0.3, 0.45)), "segmentation": mask_to_rle(m)})
        fp += 1
    for r in results:
        ys, xs = np.nonzero(rle_to_mask(r["segmentation"]))
        r["bbox"] = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    run.mkdir(parents=True, exist_ok=True)
    write_results_json(run / "predictions" / "val.json", results)
    (run / "config.yaml").write_text(yaml.safe_dump({"data": str(Path(data).resolve()), "architecture": "solov2",
                                                      "model": "nano", "epochs": epochs, "imgsz": 64}))
    lines = [",".join(COLUMNS)]
    for e in range(1, epochs + 1):
        vals = [e, 1.5, 2.0 / e, 0.01 * (1 - e / (epochs + 1)), 0.01, 0.01, 0.1 * e, 0.2 * e, 0.05 * e,
                0.1 * e, 0.2 * e, 0.05 * e, 0.1 * e, 1.0 / e, 1.0 / e]
        lines.append(",".join(f"{v:.6g}" for v in vals))
    (run / "results.csv").write_text("\n".join(lines) + "\n")
    return {"tp": tp, "fp": fp, "missed": missed}
