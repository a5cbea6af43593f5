"""instseg's overhead over plain Ultralytics for the same YOLO-seg training run, measured in one session.

Runs, alternately and ``--repeats`` times each:

* plain:   ``YOLO("<stem>.yaml").train(**args)`` with Ultralytics' own SegmentationTrainer (what
           ``yolo segment train`` does), the arguments being exactly those instseg resolves;
* instseg: ``instseg.backends.ultralytics.train(cfg, run)`` with the same configuration.

The overhead ratio is ``(instseg wall - dataset check - final COCO evaluation) / plain wall``, the two
excluded steps being reported on their own (they are work plain Ultralytics does not do). Both runs share
the process, so both run offline under ``configure_offline`` (no font download, no update check). The
medians over repeats are compared, as wall time and as this process's CPU time (less sensitive to other
jobs on a shared machine); a warm-up run pays first-use imports for neither side.

    python scripts/bench/bench_yolo_overhead.py --data ../shared/datasets/fire-seg/data.yaml --imgsz 128
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _cfg(a: argparse.Namespace):
    from instseg.config import TrainConfig

    return TrainConfig(data=Path(a.data), architecture=a.architecture, model=a.model, epochs=a.epochs,
                       batch=a.batch, imgsz=a.imgsz, device=a.device, workers=a.workers, quiet=True)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run_plain(a: argparse.Namespace, out: Path) -> dict:
    from ultralytics import YOLO

    from instseg.backends.ultralytics import configure_offline
    from instseg.backends.ultralytics_args import model_stem, resolve_ultralytics_args

    configure_offline(quiet=True)
    args = resolve_ultralytics_args(_cfg(a), out)
    w0, c0 = _clock()
    YOLO(f"{model_stem(a.architecture, a.model)}.yaml", task="segment").train(**args)
    w1, c1 = _clock()
    return {"wall_s": w1 - w0, "cpu_s": c1 - c0}


def run_instseg(a: argparse.Namespace, out: Path) -> dict:
    from instseg.backends import ultralytics as ub
    from instseg.rundir import RunDir

    w0, c0 = _clock()
    res = ub.train(_cfg(a), RunDir(out))
    w1, c1 = _clock()
    t = res.metrics["timing"]
    return {"wall_s": w1 - w0, "cpu_s": c1 - c0, "dataset_check_s": t["dataset_check_s"],
            "coco_eval_s": t["coco_eval_s"],
            "comparable_wall_s": w1 - w0 - t["dataset_check_s"] - t["coco_eval_s"],
            "comparable_cpu_s": c1 - c0 - t["dataset_check_cpu_s"] - t["coco_eval_cpu_s"],
            "segm_mAP": res.metrics.get("segm_mAP")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    p.add_argument("--data", default=str(shared / "fire-seg" / "data.yaml"))
    p.add_argument("--architecture", default="yolo11-seg")
    p.add_argument("--model", default="n")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_yolo_"))
    plain: list[dict] = []
    ours: list[dict] = []
    try:
        for i in range(a.warmup):  # first-use imports and caches, paid by neither side
            run_plain(a, tmp / f"warmup{i}")
        for i in range(a.repeats):  # alternate the order so that drift of a shared machine cancels
            first, second = (run_plain, run_instseg) if i % 2 == 0 else (run_instseg, run_plain)
            r1, r2 = first(a, tmp / f"a{i}"), second(a, tmp / f"b{i}")
            p_, o_ = (r1, r2) if first is run_plain else (r2, r1)
            plain.append(p_)
            ours.append(o_)
            print(f"repeat {i + 1}: plain {p_['wall_s']:.2f} s wall / {p_['cpu_s']:.2f} s cpu, instseg "
                  f"{o_['wall_s']:.2f} s wall / {o_['cpu_s']:.2f} s cpu "
                  f"(check {o_['dataset_check_s']:.2f} s, "
                  f"COCO eval {o_['coco_eval_s']:.2f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    summary = {
        "setup": {k: getattr(a, k) for k in ("data", "architecture", "model", "epochs", "batch", "imgsz",
                                             "device", "repeats", "warmup")},
        "plain_wall_s": med(plain, "wall_s"), "instseg_wall_s": med(ours, "wall_s"),
        "instseg_dataset_check_s": med(ours, "dataset_check_s"),
        "instseg_coco_eval_s": med(ours, "coco_eval_s"),
        "instseg_comparable_wall_s": med(ours, "comparable_wall_s"),
        "overhead_ratio_wall": med(ours, "comparable_wall_s") / med(plain, "wall_s"),
        "overhead_ratio_cpu": med(ours, "comparable_cpu_s") / med(plain, "cpu_s"),
        "target": 1.05, "all_plain": plain, "all_instseg": ours,
    }
    print(json.dumps({k: v for k, v in summary.items() if not k.startswith("all_")}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
