"""Peak memory of instseg on inputs built to exhaust it (issue 16). Each case runs in a fresh process and
prints its own peak RSS, so one case's memory never hides another's.

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
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def case_bomb(tmp: Path) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "hardening"))
    from test_bombs import png_bomb

    from instseg.data.images import load_image
    from instseg.errors import DatasetError

    path = png_bomb(tmp / "bomb.png")
    base = rss_mb()
    try:
        load_image(path)
        outcome = "DECODED (no refusal!)"
    except DatasetError as e:
        outcome = f"refused: {str(e)[:90]}..."
    return f"30000x30000 PNG ({path.stat().st_size / 1024:.0f} KB on disk): {outcome}", base


def case_label(tmp: Path):
    from instseg.data.yolo import parse_yolo_labels

    path = tmp / "big.txt"
    with open(path, "wb") as f:
        f.truncate(2**30)
    base = rss_mb()
    _, findings = parse_yolo_labels(path, 640, 480, 3)
    return f"1 GB label file (sparse): {findings[0].code}: {findings[0].message[:70]}...", base


def case_instances(tmp: Path):
    import numpy as np

    from instseg.data.coco import records_to_coco
    from instseg.data.dataset import InstanceSegDataset
    from instseg.data.types import ImageRecord
    from instseg.data.yolo import parse_yolo_labels

    import cv2

    rng = np.random.default_rng(0)
    lines = []
    for k in range(10_000):
        cx, cy = rng.uniform(0.05, 0.95, 2)
        ang = np.sort(rng.uniform(0, 2 * np.pi, 8))
        pts = np.stack([cx + 0.01 * np.cos(ang), cy + 0.01 * np.sin(ang)], 1)
        lines.append(f"{k % 3} " + " ".join(f"{v:.6f}" for v in pts.ravel()))
    (tmp / "many.txt").write_text("\n".join(lines) + "\n")
    cv2.imwrite(str(tmp / "many.jpg"), np.zeros((640, 640, 3), np.uint8))
    base = rss_mb()
    t = time.time()
    instances, _ = parse_yolo_labels(tmp / "many.txt", 640, 640, 3)
    rec = ImageRecord(path=tmp / "many.jpg", width=640, height=640, instances=instances)
    coco = records_to_coco([rec], ["a", "b", "c"])
    ds = InstanceSegDataset([rec], imgsz=640, mask_stride=4, augment=None, train=False)
    sample = ds[0]
    return (f"10,000 instances in one 640x640 image: {len(instances)} parsed, {len(coco['annotations'])} COCO "
            f"annotations, masks {tuple(sample['masks'].shape)} at stride 4 ({time.time() - t:.1f} s)"), base


def _write_coco(path: Path, target_mb: float) -> int:
    import numpy as np

    rng = np.random.default_rng(0)
    images, anns, aid = [], [], 0
    size = 0
    with open(path, "w") as f:
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
    return len(anns)


def case_coco(tmp: Path, mb: float):
    from instseg.data.coco import load_coco

    path = tmp / "big.json"
    n = _write_coco(path, mb)
    import gc

    gc.collect()
    base = rss_mb()
    t = time.time()
    ds = load_coco(path, tmp)
    return (f"COCO JSON of {path.stat().st_size / 2**20:.0f} MB ({len(ds.records)} images, {n} polygons): "
            f"loaded in {time.time() - t:.0f} s"), base


def run_case(name: str, coco_mb: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        text, base = {"bomb": case_bomb, "label": case_label, "instances": case_instances,
                      "coco": lambda t: case_coco(t, coco_mb)}[name](tmp)
        print(json.dumps({"case": name, "what": text, "baseline_mb": round(base), "peak_mb": round(rss_mb()),
                          "cost_mb": round(rss_mb() - base)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["bomb", "label", "instances", "coco"])
    ap.add_argument("--coco-mb", type=float, default=200)
    args = ap.parse_args()
    if args.case:
        run_case(args.case, args.coco_mb)
        return
    for name in ("bomb", "label", "instances", "coco"):
        out = subprocess.run([sys.executable, __file__, "--case", name, "--coco-mb", str(args.coco_mb)],
                             capture_output=True, text=True)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[-300:]
        try:
            r = json.loads(line)
            print(f"{r['case']:10s} peak RSS {r['peak_mb']:6d} MB (input itself: +{r['cost_mb']} MB)  {r['what']}")
        except ValueError:
            print(f"{name:10s} FAILED: {line}")


if __name__ == "__main__":
    main()
