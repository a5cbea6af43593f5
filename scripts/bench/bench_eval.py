"""Benchmark: `instseg eval` (faster-coco-eval engine) against pycocotools' COCOeval, end to end.

Ground truth: coco128-seg converted with `instseg convert yolo2coco` (val split, 128 images). Predictions:
100 per image with a fixed seed: jittered copies of each ground-truth polygon (vertex noise, shift, scale,
sometimes the wrong class) rasterized to RLE, then random polygons as false positives up to 100.

Timed, --repeat interleaved rounds (median and best, wall and CPU seconds), all from the JSON files on disk:
  * instseg eval (CLI): the ``instseg eval --gt --pred`` process (Python start-up and imports included);
  * pycocotools script: a Python process that imports pycocotools, runs ``COCO(gt_json)``, reads the results
    JSON once, then ``loadRes`` + ``evaluate`` + ``accumulate`` + ``summarize`` for segm and for bbox (segm
    without the result boxes, as instseg does, so that the small/medium/large ranges use mask areas);
  * the same two in this process, imports warm: ``evaluate(gt_json, results_json)`` and the pycocotools
    pipeline as a function.
The headline is the whole-process ratio, pycocotools script / instseg eval (median of the rounds). The 12 COCO
numbers of segm and bbox must be equal to 1e-4 (exit 1 otherwise), from both pycocotools runs.

    .venv/bin/python scripts/bench/bench_eval.py [--data coco128-seg/data.yaml] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _default_data() -> Path:
    """coco128-seg's data.yaml: under $INSTSEG_DATASETS, else the shared/datasets beside the checkout (or
    beside its parent, for a git worktree)."""
    roots = [Path(os.environ["INSTSEG_DATASETS"])] if os.environ.get("INSTSEG_DATASETS") else []
    roots += [REPO.parent / "shared" / "datasets", REPO.parent.parent / "shared" / "datasets"]
    for root in roots:
        if (root / "coco128-seg" / "data.yaml").is_file():
            return root / "coco128-seg" / "data.yaml"
    return roots[-1] / "coco128-seg" / "data.yaml"


DEFAULT_DATA = _default_data()

#: The reference as a user would write it: a script run by its own Python process (argv: gt, results).
REFERENCE_SCRIPT = """
import contextlib, io, json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

stats = {}
with contextlib.redirect_stdout(io.StringIO()):
    coco_gt = COCO(sys.argv[1])
    with open(sys.argv[2]) as f:
        results = json.load(f)
    for iou_type in ("segm", "bbox"):
        dets = results
        if iou_type == "segm":
            dets = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
        ev = COCOeval(coco_gt, coco_gt.loadRes(dets), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        stats[iou_type] = [float(s) for s in ev.stats]
print(json.dumps(stats))
"""


def _polygon_rle(poly: np.ndarray, h: int, w: int) -> dict:
    import pycocotools.mask as mask_api

    rle = mask_api.frPyObjects([poly.ravel().tolist()], h, w)[0]
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def _jitter(poly: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vertex noise, a shift and a scale about the centroid, all relative to the object's size (pixels)."""
    size = max(float(np.ptp(poly[:, 0])), float(np.ptp(poly[:, 1])), 2.0)
    centre = poly.mean(axis=0)
    scale = rng.uniform(0.8, 1.2)
    shift = rng.normal(0.0, 0.08 * size, size=2)
    noise = rng.normal(0.0, 0.03 * size, size=poly.shape)
    return (poly - centre) * scale + centre + shift + noise


def _random_polygon(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random star-shaped polygon of 8 vertices somewhere in the image (pixels)."""
    r = rng.uniform(4, min(h, w) / 4)
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    ang = np.sort(rng.uniform(0, 2 * np.pi, 8))
    rad = r * rng.uniform(0.5, 1.0, 8)
    return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)


def make_predictions(gt: dict, per_image: int = 100, seed: int = 0) -> list[dict]:
    """``per_image`` COCO results per ground-truth image (see the module docstring)."""
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt["categories"]]
    by_image: dict[int, list[dict]] = {im["id"]: [] for im in gt["images"]}
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    results: list[dict] = []
    for img in gt["images"]:
        h, w = img["height"], img["width"]
        preds: list[dict] = []
        anns = [
            a for a in by_image[img["id"]] if not a.get("iscrowd") and isinstance(a["segmentation"], list)
        ]
        copies = max(1, min(5, (per_image // 2) // max(len(anns), 1)))
        for ann in anns:
            for c in range(copies):
                part = max(ann["segmentation"], key=len)
                poly = _jitter(np.asarray(part, np.float64).reshape(-1, 2), rng)
                x0, y0 = poly.min(axis=0)
                x1, y1 = poly.max(axis=0)
                cat = ann["category_id"] if rng.random() > 0.1 else int(rng.choice(cat_ids))
                score = float(rng.uniform(0.3, 1.0) if c == 0 else rng.uniform(0.0, 0.6))
                preds.append(
                    {
                        "image_id": img["id"],
                        "category_id": cat,
                        "score": round(score, 6),
                        "bbox": [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                        "segmentation": _polygon_rle(poly, h, w),
                    }
                )
        preds = preds[:per_image]
        while len(preds) < per_image:
            poly = _random_polygon(h, w, rng)
            x0, y0 = poly.min(axis=0)
            x1, y1 = poly.max(axis=0)
            preds.append(
                {
                    "image_id": img["id"],
                    "category_id": int(rng.choice(cat_ids)),
                    "score": round(float(rng.uniform(0.0, 0.5)), 6),
                    "bbox": [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                    "segmentation": _polygon_rle(poly, h, w),
                }
            )
        results += preds
    return results


def pycocotools_end_to_end(gt_path: Path, res_path: Path) -> dict[str, list[float]]:
    """The reference pipeline, from the files: returns COCOeval.stats per IoU type."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    stats = {}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        with open(res_path) as f:
            results = json.load(f)
        for iou_type in ("segm", "bbox"):
            dets = (
                [{k: v for k, v in r.items() if k != "bbox"} for r in results]
                if iou_type == "segm"
                else results
            )
            ev = COCOeval(coco_gt, coco_gt.loadRes(dets), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            stats[iou_type] = [float(s) for s in ev.stats]
    return stats


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process, all threads, plus its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def interleaved(contenders: dict, repeat: int) -> tuple[dict, dict, dict]:
    """Run the contenders in turn, ``repeat`` rounds (a load change on a shared machine hits all alike);
    return the wall times and CPU times of every round and the last output of each."""
    wall: dict[str, list[float]] = {k: [] for k in contenders}
    cpu: dict[str, list[float]] = {k: [] for k in contenders}
    out = {}
    for _ in range(repeat):
        for name, fn in contenders.items():
            t0, c0 = time.perf_counter(), _cpu_seconds()
            out[name] = fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(_cpu_seconds() - c0)
    return wall, cpu, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="YOLO data.yaml (default: coco128-seg)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--per-image", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from instseg.data.convert import yolo2coco
    from instseg.evaluation import evaluate, write_results_json
    from instseg.evaluation.metrics import SUMMARY_SPEC

    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        tmp = Path(tmp)
        gt_path = yolo2coco(args.data, tmp / "coco")[args.split]
        gt = json.loads(gt_path.read_text())
        results = make_predictions(gt, args.per_image, args.seed)
        res_path = write_results_json(tmp / "results.json", results)
        print(
            f"ground truth: {gt_path.name} from {args.data}: {len(gt['images'])} images, "
            f"{len(gt['annotations'])} instances, {len(gt['categories'])} categories"
        )
        print(
            f"predictions: {len(results)} ({args.per_image}/image, seed {args.seed}), "
            f"results JSON {res_path.stat().st_size / 1e6:.1f} MB"
        )

        exe = Path(sys.executable).with_name("instseg")
        cmd = [str(exe), "eval", "--gt", str(gt_path), "--pred", str(res_path)]
        script = tmp / "pycocotools_eval.py"
        script.write_text(REFERENCE_SCRIPT)
        ref_cmd = [sys.executable, str(script), str(gt_path), str(res_path)]
        evaluate(gt_path, res_path)  # warm the imports, as the reference's are warm below
        wall, cpu, out = interleaved(
            {
                "cli": lambda: subprocess.run(cmd, check=True, capture_output=True),
                "ref_cli": lambda: subprocess.run(ref_cmd, check=True, capture_output=True, text=True),
                "lib": lambda: evaluate(gt_path, res_path),
                "ref": lambda: pycocotools_end_to_end(gt_path, res_path),
            },
            args.repeat,
        )
        metrics = out["lib"]
        refs = {"in-process": out["ref"], "script": json.loads(out["ref_cli"].stdout)}

    worst = 0.0
    for iou_type in ("segm", "bbox"):
        ours = list(getattr(metrics, iou_type).summary().values())
        for ref in refs.values():
            theirs = [np.nan if s == -1 else s for s in ref[iou_type]]
            diff = np.nanmax(np.abs(np.array(ours) - np.array(theirs)))
            same_nan = np.array_equal(np.isnan(ours), np.isnan(theirs))
            worst = max(worst, float(diff) if same_nan else float("inf"))
        print(
            f"{iou_type}: " + "  ".join(f"{n}={v:.4f}" for (n, *_), v in zip(SUMMARY_SPEC, ours, strict=True))
        )
    print(f"max |instseg - pycocotools| over the 24 numbers (script and in-process): {worst:.2e}")
    labels = {
        "cli": "instseg eval --gt --pred (process)",
        "ref_cli": "pycocotools script (process)     ",
        "lib": "instseg evaluate() (in-process)   ",
        "ref": "pycocotools (in-process)          ",
    }
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"{args.repeat} interleaved rounds                 wall s: median   best   CPU s: median   best")
    for key, label in labels.items():
        print(
            f"{label}    {med[key]:7.3f} {min(wall[key]):7.3f}       {med_cpu[key]:7.3f} {min(cpu[key]):7.3f}"
        )
    per_round = [r / o for r, o in zip(wall["ref_cli"], wall["cli"], strict=True)]  # same load in a round
    print(
        f"whole process, pycocotools script / instseg eval: {med['ref_cli'] / med['cli']:.2f}x "
        f"(median of per-round ratios {statistics.median(per_round):.2f}x; CPU "
        f"{med_cpu['ref_cli'] / med_cpu['cli']:.2f}x; target >= 3x, goal 5x)"
    )
    print(
        f"instseg eval process vs pycocotools warm in-process: {med['ref'] / med['cli']:.2f}x; "
        f"in-process, both warm: {med['ref'] / med['lib']:.2f}x"
    )
    if worst > 1e-4:
        print("FAIL: numbers differ from pycocotools by more than 1e-4")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
