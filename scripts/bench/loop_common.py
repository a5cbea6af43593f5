"""Shared by bench_train_loop.py and bench_val.py: a subset of a dataset as its own data.yaml (+ COCO JSON for
MMDetection), and the MMDetection child process (scripts/bench/mmdet_loop.py, run by the scratch
environment's Python, DEVELOPERS.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "datasets"
DEFAULT_DATA = SHARED / "fire-seg" / "data.yaml"
MMDET_PYTHON = Path(os.environ.get("INSTSEG_MMDET_PYTHON", "/tmp/mmenv/bin/python"))
MMDET_FAMILIES = {"rtmdet-ins", "solov2"}


def subset_dataset(data: Path, out: Path, n_train: int | None, n_val: int | None, coco: bool = False) -> dict:
    """``out/data.yaml`` over the first ``n_train`` train and ``n_val`` val images of ``data`` (``.txt``
    lists of absolute paths), and with ``coco`` the two splits as COCO JSON. Returns paths and counts."""
    import yaml

    from instseg.data.checks import load_split
    from instseg.data.yaml_config import load_data_yaml

    spec = load_data_yaml(data)
    out.mkdir(parents=True, exist_ok=True)
    info: dict = {"yaml": out / "data.yaml", "names": list(spec.names)}
    lists = {}
    for split, n in (("train", n_train), ("val", n_val)):
        records, _ = load_split(data, split)
        if split == "train":  # MMDetection's training set drops images without annotations; so does the subset
            records = [r for r in records if r.instances]
        records = records[:n] if n else records
        (out / f"{split}.txt").write_text("".join(f"{r.path}\n" for r in records))
        lists[split] = str(out / f"{split}.txt")
        info[f"n_{split}"] = len(records)
    (out / "data.yaml").write_text(yaml.safe_dump({**lists, "nc": len(spec.names), "names": list(spec.names)}))
    if coco:
        from instseg.data.convert import yolo2coco

        jsons = yolo2coco(out / "data.yaml", out / "coco", use_cache=False)
        for split, path in jsons.items():
            info[f"{split}_json"] = path
            info[f"{split}_images_dir"] = json.loads(path.read_text())["info"]["instseg"]["images_dir"]
    return info


def mmdet_available() -> str | None:
    """None when the MMDetection scratch environment answers, else the reason it does not."""
    if not MMDET_PYTHON.exists():
        return (f"no MMDetection environment at {MMDET_PYTHON} (build it with DEVELOPERS.md's recipe, or set "
                "INSTSEG_MMDET_PYTHON)")
    r = subprocess.run([str(MMDET_PYTHON), "-c", "import mmdet, mmcv.ops, mmengine"], capture_output=True,
                       text=True, cwd="/")
    if r.returncode:
        return f"{MMDET_PYTHON} cannot import mmdet/mmcv.ops: {r.stderr.strip().splitlines()[-1:]}"
    return None


def run_mmdet(args: list[str], timeout: float = 3600) -> dict:
    """Run scripts/bench/mmdet_loop.py with ``args`` in the MMDetection environment; its JSON result."""
    out = Path(args[args.index("--out") + 1])
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO / 'scripts'}"}
    r = subprocess.run([str(MMDET_PYTHON), str(REPO / "scripts" / "bench" / "mmdet_loop.py"), *args], env=env,
                       cwd="/", capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-6000:])
        raise RuntimeError(f"mmdet_loop.py exited with {r.returncode}")
    return json.loads(out.read_text())


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.3f}x" if theirs else "n/a"


def torchvision_results(o: dict, image_id: int, category_of) -> list[dict]:
    """COCO results (RLE, xywh) of one torchvision detection dict on the CPU (``masks`` [K,1,H,W]
    probabilities, thresholded at 0.5 as references/detection does); ``category_of(label)`` maps a
    1-based label to its category id."""
    import numpy as np
    from pycocotools import mask as mask_util

    masks = (o["masks"][:, 0] > 0.5).numpy().astype(np.uint8)
    results = []
    for k in range(len(o["scores"])):
        rle = mask_util.encode(np.asfortranarray(masks[k]))
        rle["counts"] = rle["counts"].decode("ascii")
        x1, y1, x2, y2 = o["boxes"][k].tolist()
        results.append({"image_id": image_id, "score": float(o["scores"][k]),
                        "category_id": category_of(int(o["labels"][k])), "segmentation": rle,
                        "bbox": [x1, y1, x2 - x1, y2 - y1]})
    return results


def coco_map(coco, results: list[dict]) -> dict:
    """pycocotools' mAP@[.5:.95] per IoU type ({"bbox", "segm"}); empty without results."""
    from pycocotools.cocoeval import COCOeval

    stats = {}
    if results:
        dt = coco.loadRes(results)
        for iou_type in ("bbox", "segm"):
            ev = COCOeval(coco, dt, iou_type)
            ev.evaluate(), ev.accumulate(), ev.summarize()
            stats[iou_type] = float(ev.stats[0])
    return stats
