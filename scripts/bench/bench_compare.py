"""Benchmark: the compare bootstrap (1000 resamples of the val images) against one COCOeval run.

Ground truth: coco128-seg's val split as instseg scores it (128 images). Predictions: 100 per image, made
as ``bench_eval.py`` makes them (jittered ground-truth polygons + random false positives, fixed seed).
Timed (wall seconds, best of --repeat), segm only:
  * one COCOeval run: instseg's evaluator (faster-coco-eval) and pycocotools' COCOeval (evaluate + accumulate);
  * the bootstrap: the per-image evaluation once (pycocotools' evaluateImg, area 'all', 100 detections), then
    --samples resamples re-accumulated with numpy.
Target (issue 11): the resamples cost less than 5 COCOeval runs. Also checks that the full-sample
re-accumulation equals COCOeval's mAP (exit 1 otherwise).

    .venv/bin/python scripts/bench/bench_compare.py [--data ../shared/datasets/coco128-seg/data.yaml]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_eval import DEFAULT_DATA, make_predictions  # noqa: E402


def _best(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _pycocotools(gt: dict, results: list[dict]) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes([dict(r) for r in results]), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--per-image", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if not args.data.is_file():
        print(f"skip: {args.data} not found")
        return 0
    from instseg.compare import bootstrap as bs
    from instseg.compare.runs import ground_truth
    from instseg.evaluation import evaluate

    gt = ground_truth(args.data, "val").gt
    results = [{k: v for k, v in r.items() if k != "bbox"} for r in make_predictions(gt, args.per_image, seed=0)]
    n_img = len(gt["images"])
    print(f"{args.data}: {n_img} val images, {len(gt['annotations'])} instances, {len(results)} predictions")

    t_faster, m = _best(lambda: evaluate(gt, results, iou_types=("segm",)), args.repeat)
    t_pyco, ref = _best(lambda: _pycocotools(gt, results), 1)
    t_pre, ev = _best(lambda: bs.per_image_eval(gt, results, "segm"), 1)
    weights = bs.resample_weights(n_img, args.samples, seed=0)
    t_boot, acc = _best(lambda: bs.accumulate(ev, weights), args.repeat)
    full = float(bs.accumulate(ev, np.ones((1, n_img)))["mAP"][0])
    lo, hi = bs.interval(acc["mAP"])
    print(f"segm mAP: instseg {m.segm.AP:.4f}  pycocotools {ref:.4f}  re-accumulated {full:.4f}  "
          f"95% CI [{lo:.4f}, {hi:.4f}]")
    print(f"one COCOeval run   : instseg/faster-coco-eval {t_faster:.2f} s   pycocotools {t_pyco:.2f} s")
    print(f"bootstrap          : per-image evaluation once {t_pre:.2f} s + {args.samples} resamples {t_boot:.2f} s "
          f"({1000 * t_boot / args.samples:.2f} ms each)")
    print(f"{args.samples} resamples = {t_boot / t_faster:.2f} x one instseg evaluation, "
          f"{t_boot / t_pyco:.2f} x one pycocotools run; whole bootstrap (with the per-image pass) = "
          f"{(t_pre + t_boot) / t_faster:.2f} x one instseg evaluation (target: < 5)")
    ok = abs(full - ref) < 1e-9 and abs(full - m.segm.AP) < 1e-4
    print("full-sample re-accumulation equals COCOeval: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
