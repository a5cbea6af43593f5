"""Peak memory of instseg on inputs built to exhaust it (issue 16). Each case runs in a fresh process and
prints its own peak RSS (VmHWM), so one case's memory never hides another's; its input is written
beforehand by another fresh process, so building the input is not counted either.

    PYTHONPATH=src python scripts/bench/bench_big_inputs.py            # all cases
    PYTHONPATH=src python scripts/bench/bench_big_inputs.py --case coco --coco-mb 200

Cases: ``bomb`` (a 30,000 x 30,000 PNG of a few KB: refused from its header), ``label`` (a sparse 1 GB label
file: refused by its size), ``instances`` (one 640 x 640 image with 10,000 polygons: parsed, written as COCO,
rasterized by the dataset), ``coco`` (a COCO JSON of about 200 MB: loaded by ``load_coco``). The baseline
is the RSS after the imports a case needs, so the figure is what the input itself costs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    """This process's peak RSS so far: VmHWM of /proc/self/status, the high-water mark of this process's own
    memory. (ru_maxrss would do in a child of a small process, but Linux carries the spawning process's
    RSS over into the child's ru_maxrss at exec: a case started from a 1.5 GB pytest starts at 1.5 GB.)
    Elsewhere ru_maxrss (KB on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Each case is two steps, each run in its own fresh process: ``prepare_*`` writes the input into a folder,
# ``case_*`` imports what it needs, takes its peak RSS so far as the baseline and reads the input. The peak
# never goes down, so building the input in the measured process (a 200 MB COCO JSON is ~1 GB of Python
# objects while it is written) would raise the baseline above the load and hide what the load needs.
def prepare_bomb(tmp: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "hardening"))
    from test_bombs import png_bomb

    png_bomb(tmp / "bomb.png")


def case_bomb(tmp: Path):
    from instseg.data.images import load_image
    from instseg.errors import DatasetError

    path = tmp / "bomb.png"
    base = rss_mb()
    try:
        load_image(path)
        outcome = "DECODED (no refusal!)"
    except DatasetError as e:
        outcome = f"refused: {str(e)[:90]}..."
    return f"30000x30000 PNG ({path.stat().st_size / 1024:.0f} KB on disk): {outcome}", base


def prepare_label(tmp: Path) -> None:
    with open(tmp / "big.txt", "wb") as f:
        f.truncate(2**30)


def case_label(tmp: Path):
    from instseg.data.yolo import parse_yolo_labels

    base = rss_mb()
    _, findings = parse_yolo_labels(tmp / "big.txt", 640, 480, 3)
    return f"1 GB label file (sparse): {findings[0].code}: {findings[0].message[:70]}...", base


def prepare_instances(tmp: Path) -> None:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    lines = []
    for k in range(10_000):
        cx, cy = rng.uniform(0.05, 0.95, 2)
        ang = np.sort(rng.uniform(0, 2 * np.pi, 8))
        pts = np.stack([cx + 0.01 * np.cos(ang), cy + 0.01 * np.sin(ang)], 1)
        lines.append(f"{k % 3} " + " ".join(f"{v:.6f}" for v in pts.ravel()))
    (tmp / "many.txt").write_text("\n".join(lines) + "\n")
    cv2.imwrite(str(tmp / "many.jpg"), np.zeros((640, 640, 3), np.uint8))


def case_instances(tmp: Path):
    import torch  # noqa: F401  (the dataset imports it: in the baseline, not in the input's cost)

    from instseg.augment.dataset import InstanceSegDataset
    from instseg.data.coco import records_to_coco
    from instseg.data.types import ImageRecord
    from instseg.data.yolo import parse_yolo_labels

    base = rss_mb()
    t = time.time()
    instances, _ = parse_yolo_labels(tmp / "many.txt", 640, 640, 3)
    rec = ImageRecord(path=tmp / "many.jpg", width=640, height=640, instances=instances)
    coco = records_to_coco([rec], ["a", "b", "c"])
    ds = InstanceSegDataset([rec], imgsz=640, mask_stride=4, augment=None, train=False)
    sample = ds[0]
    return (f"10,000 instances in one 640x640 image: {len(instances)} parsed, {len(coco['annotations'])} COCO "
            f"annotations, masks {tuple(sample['masks'].shape)} at stride 4 ({time.time() - t:.1f} s)"), base


def prepare_coco(tmp: Path, target_mb: float) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    images, anns, aid = [], [], 0
    size = 0
    with open(tmp / "big.json", "w") as f:
        k = 0
        while size < target_mb * 2**20:
            k += 1
            images.append({"id": k, "file_name": f"{k:07d}.jpg", "width": 640, "height": 480})
            for _ in range(15):
                aid += 1
                cx, cy = rng.uniform(50, 590), rng.uniform(50, 430)
                ang = np.sort(rng.uniform(0, 2 * np.pi, 24))
                poly = np.round(np.stack([cx + 30 * np.cos(ang), cy + 30 * np.sin(ang)], 1).ravel(), 2).tolist()
                anns.append({"id": aid, "image_id": k, "category_id": 1 + aid % 5, "iscrowd": 0, "area": 2800.0,
                             "bbox": [cx - 30, cy - 30, 60, 60], "segmentation": [poly]})
                size += 420
        json.dump({"images": images, "annotations": anns,
                   "categories": [{"id": c, "name": f"c{c}"} for c in range(1, 6)]}, f)


def case_coco(tmp: Path):
    from instseg.data.coco import load_coco

    path = tmp / "big.json"
    base = rss_mb()
    t = time.time()
    ds = load_coco(path, tmp)
    n = sum(len(r.instances) for r in ds.records)
    return (f"COCO JSON of {path.stat().st_size / 2**20:.0f} MB ({len(ds.records)} images, {n} polygons): "
            f"loaded in {time.time() - t:.0f} s"), base


CASES = ("bomb", "label", "instances", "coco")


def prepare_case(name: str, folder: Path, coco_mb: float) -> None:
    {"bomb": prepare_bomb, "label": prepare_label, "instances": prepare_instances,
     "coco": lambda t: prepare_coco(t, coco_mb)}[name](folder)


def run_case(name: str, folder: Path) -> None:
    """Measure one case on the input ``prepare_case`` wrote (call it in a fresh process)."""
    text, base = {"bomb": case_bomb, "label": case_label, "instances": case_instances,
                  "coco": case_coco}[name](folder)
    peak = rss_mb()
    print(json.dumps({"case": name, "what": text, "baseline_mb": round(base), "peak_mb": round(peak),
                      "cost_mb": round(peak - base)}))


def measure(name: str, coco_mb: float) -> dict:
    """Prepare and measure case ``name``, each in its own fresh process; the measuring process's figures."""
    with tempfile.TemporaryDirectory() as d:
        common = [sys.executable, __file__, "--case", name, "--dir", d, "--coco-mb", str(coco_mb)]
        prep = subprocess.run([*common, "--prepare"], capture_output=True, text=True)
        if prep.returncode != 0:
            raise RuntimeError(f"preparing the input failed: {prep.stderr.strip()[-300:]}")
        out = subprocess.run(common, capture_output=True, text=True)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[-300:]
    try:
        return json.loads(line)
    except ValueError:
        raise RuntimeError(line) from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=CASES)
    ap.add_argument("--coco-mb", type=float, default=200)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)  # a case's input folder (the child processes)
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # write the input, measure nothing
    args = ap.parse_args()
    if args.dir is not None:  # one step of one case, in this fresh process
        if args.prepare:
            prepare_case(args.case, args.dir, args.coco_mb)
        else:
            run_case(args.case, args.dir)
        return
    for name in [args.case] if args.case else CASES:
        try:
            r = measure(name, args.coco_mb)
        except RuntimeError as e:
            print(f"{name:10s} FAILED: {e}")
            continue
        print(f"{r['case']:10s} peak RSS {r['peak_mb']:6d} MB (after imports {r['baseline_mb']} MB, "
              f"input itself: +{r['cost_mb']} MB)  {r['what']}")


if __name__ == "__main__":
    main()
