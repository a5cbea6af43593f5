"""Do the defaults ever diverge? Train every registered architecture from random init with its defaults.

Each (architecture, size) runs ``instseg train --data fire8.yaml -a ARCH -m SIZE --imgsz 128 --batch 2
--epochs 2 --device cpu`` (nothing else: the recipe, clipping and augmentation are the defaults) on the first
8 train and 4 val images of fire-seg, in its own process, and the table shows the final epoch's losses,
whether they are finite, and how many non-finite losses the engine recovered from. Architectures whose
backend is not installed are listed as skipped, with the reason.

    python scripts/bench/bench_divergence.py                 # every size of every architecture
    python scripts/bench/bench_divergence.py --smallest      # the smallest size of each (what the slow test runs)
    python scripts/bench/bench_divergence.py -a maskrcnn     # one architecture
    python scripts/bench/bench_divergence.py --smallest -m r50-fpn-v2   # ... plus Mask R-CNN's default size
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRE_SEG = Path(os.environ.get("INSTSEG_FIRE_SEG", "/work/shared/datasets/fire-seg"))
ARGS = ["--imgsz", "128", "--batch", "2", "--epochs", "2", "--device", "cpu"]


def fire8_yaml(root: Path, dataset: Path = FIRE_SEG, n_train: int = 8, n_val: int = 4) -> Path:
    """A data.yaml listing the first ``n_train`` train and ``n_val`` valid images of fire-seg (nothing copied)."""
    root.mkdir(parents=True, exist_ok=True)
    train = sorted((dataset / "train" / "images").iterdir())[:n_train]
    val = sorted((dataset / "valid" / "images").iterdir())[:n_val]
    (root / "train.txt").write_text("".join(f"{p}\n" for p in train))
    (root / "val.txt").write_text("".join(f"{p}\n" for p in val))
    data = root / "fire8.yaml"
    data.write_text(f"path: {root}\ntrain: train.txt\nval: val.txt\nnames: ['fire']\n")
    return data


def targets(only: list[str] | None = None, smallest: bool = False,
            sizes: list[str] | None = None) -> list[tuple[str, str, str | None]]:
    """(architecture, size, why it is skipped or None) for every registered architecture."""
    from instseg.backends import get_backend
    from instseg.models.registry import ARCHITECTURES

    out = []
    for name, spec in ARCHITECTURES.items():
        if only and name not in only:
            continue
        if spec.status != "available":
            continue
        try:
            why = get_backend(spec.backend).available()
        except Exception as e:  # a backend that cannot even be imported is skipped, with the reason
            why = f"{type(e).__name__}: {e}"
        chosen = list(spec.sizes)
        if smallest:
            chosen = [min(spec.sizes.values(), key=lambda s: s.params_m or float("inf")).name]
        if sizes:
            chosen = [s for s in spec.sizes if s in sizes or (smallest and s in chosen)]
        out += [(name, size, why) for size in chosen]
    return out


def run_one(data: Path, arch: str, size: str, project: Path, timeout: float = 1800) -> dict:
    """Train one (arch, size) with the defaults in a subprocess; its final losses and whether they are finite."""
    cmd = [sys.executable, "-m", "instseg", "train", "--data", str(data), "-a", arch, "-m", size, *ARGS,
           "--project", str(project), "--name", f"{arch}-{size}", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    row = {"arch": arch, "size": size, "seconds": time.time() - t0, "exit": proc.returncode, "losses": {},
           "nan_recoveries": "", "error": ""}
    csv_path = project / f"{arch}-{size}" / "results.csv"
    if csv_path.exists():
        rows = list(csv.DictReader(csv_path.open(newline="")))
        if rows:
            last = rows[-1]
            row["losses"] = {k.split("/", 1)[1]: float(v) if v not in ("", None) else float("nan")
                             for k, v in last.items() if k.startswith("train/")}
            row["nan_recoveries"] = last.get("nan_recoveries", "")
            row["epochs"] = len(rows)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        row["error"] = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else "")
    row["finite"] = (proc.returncode == 0 and row.get("epochs") == 2 and bool(row["losses"])
                     and all(math.isfinite(v) for v in row["losses"].values()))
    return row


def table(rows: list[dict]) -> str:
    lines = [f"{'arch':<12} {'size':<11} {'finite':<6} {'nan_rec':<7} {'loss':>8}  {'time':>6}  final losses (epoch 2)",
             "-" * 100]
    for r in rows:
        if r.get("skipped"):
            lines.append(f"{r['arch']:<12} {r['size']:<11} {'skip':<6} {'':<7} {'':>8}  {'':>6}  {r['skipped']}")
            continue
        terms = {k: v for k, v in r["losses"].items() if k != "loss"}
        text = " ".join(f"{k}={v:.4g}" for k, v in terms.items()) or r["error"]
        total = r["losses"].get("loss", float("nan"))
        lines.append(f"{r['arch']:<12} {r['size']:<11} {'yes' if r['finite'] else 'NO':<6} "
                     f"{r['nan_recoveries']!s:<7} {total:>8.4f}  {r['seconds']:>5.0f}s  {text}")
        if r["error"] and r["losses"]:
            lines.append(f"{'':<12} {'':<11} {r['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-a", "--architecture", action="append", help="only this architecture (repeatable)")
    ap.add_argument("--smallest", action="store_true", help="only the smallest size of each architecture")
    ap.add_argument("-m", "--model", action="append", help="only this size (repeatable; with --smallest: also)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the runs under this folder")
    args = ap.parse_args(argv)
    if not (FIRE_SEG / "train" / "images").is_dir():
        print(f"fire-seg not found at {FIRE_SEG} (set INSTSEG_FIRE_SEG)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        data = fire8_yaml(root / "data")
        rows = []
        for arch, size, why in targets(args.architecture, args.smallest, args.model):
            if why:
                rows.append({"arch": arch, "size": size, "skipped": why})
                continue
            rows.append(run_one(data, arch, size, root / "runs"))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        print()
        print(f"instseg train -a ARCH -m SIZE {' '.join(ARGS)} on 8 fire-seg train images (4 val), defaults:")
        print(table(rows))
    ran = [r for r in rows if not r.get("skipped")]
    return 0 if ran and all(r["finite"] for r in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
