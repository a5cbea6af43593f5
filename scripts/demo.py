"""`make demo`: what a new user should see first. Generate the synthetic demo dataset, check it, then train
three architectures on it under one protocol and compare them with one evaluator:

    instseg compare --data demo_data/data.yaml -a yolo11-seg:n -a rtmdet-ins:tiny -a solov2:nano \\
        --time 0.017 --imgsz 128 --batch 8 --set nbs=8 --device cpu --out work_dirs/demo/compare

Each architecture gets the same wall-time budget (``--time``, hours: 61 s), so the demo takes about the same
few minutes on any machine (about 4 on 2 CPU cores) and ends with the table and the path of the HTML
report. ``nbs=8`` (the nominal batch, Ultralytics' 64 by default) makes every batch of 8 an optimizer step:
24 training images are 3 steps an epoch instead of one step every 2.7 epochs. One minute of CPU from random
weights is enough to rank the three, not to make any of them good: expect mask mAPs of a few percent at most.
Every step is the `instseg` command a user would type. Running it again finds the finished entries and
does not retrain them (compare's resume); `rm -rf work_dirs/demo` starts over.

    .venv/bin/python scripts/demo.py [-a rtmdet-ins:tiny -a solov2:nano] [--time 0.017] [--imgsz 128]
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ENTRIES = ("yolo11-seg:n", "rtmdet-ins:tiny", "solov2:nano")


def run(*args: str) -> int:
    cmd = [sys.executable, "-m", "instseg", *args]
    print(f"\n$ instseg {shlex.join(args)}", flush=True)
    t0 = time.time()
    code = subprocess.run(cmd, cwd=REPO).returncode
    print(f"({time.time() - t0:.0f} s)", flush=True)
    return code


def main() -> int:
    from instseg.data.demo import make_demo_dataset

    ap = argparse.ArgumentParser(description="instseg demo: a comparison of three architectures")
    ap.add_argument("-a", "--arch", action="append", help=f"ARCH:SIZE (repeat); default {' '.join(DEFAULT_ENTRIES)}")
    ap.add_argument("--time", type=float, default=0.017, help="training budget per architecture, hours")
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--data-dir", type=Path, default=REPO / "demo_data")
    ap.add_argument("--out", type=Path, default=REPO / "work_dirs" / "demo" / "compare")
    args = ap.parse_args()

    t0 = time.time()
    entries = list(args.arch or DEFAULT_ENTRIES)
    if not args.arch and importlib.util.find_spec("ultralytics") is None:
        entries.remove("yolo11-seg:n")
        print("ultralytics is not installed (pip install 'instseg[yolo]'): comparing without yolo11-seg")
    data = make_demo_dataset(args.data_dir, n_train=24, n_val=8, imgsz=256, seed=0)
    print(f"demo dataset: {data}")
    if run("doctor", str(data)):
        return 1
    cmd = ["compare", "--data", str(data)]
    for e in entries:
        cmd += ["-a", e]
    cmd += ["--time", str(args.time), "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--set", "nbs=8",
            "--device", "cpu", "--workers", "0", "--latency-iters", "10", "--out", str(args.out)]
    code = run(*cmd)
    print(f"\ndemo finished in {time.time() - t0:.0f} s. The run folders are in {args.out} (config.yaml, "
          "results.csv, metrics.json, weights/, predictions/val.json each); compare.json and compare.csv beside "
          f"them; open {args.out / 'report' / 'index.html'} in a browser.")
    return code


if __name__ == "__main__":
    sys.exit(main())
