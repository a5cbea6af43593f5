"""Samples per second of instseg's training pipeline against Ultralytics' YOLODataset, same settings.

Default training recipe on both sides: mosaic 1.0, random affine (translate 0.1, scale 0.5), HSV, fliplr 0.5,
imgsz 640, masks at stride 4 (Ultralytics: ``mask_ratio=4``, its default ``overlap_mask=True``), one process,
no RAM cache (both keep a buffer of the 128 most recently decoded images for mosaic). Each side runs in its
own forked child (so each peak RSS is its own), alternately, ``--repeats`` times; the best run of each is
compared. Ultralytics is made quiet and offline; its label cache goes to a temporary folder (symlinks), never
into the dataset.

    python scripts/bench/bench_data.py --data ../shared/datasets/coco128-seg/data.yaml --n 256
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path


def _instseg_dataset(a: argparse.Namespace):
    from instseg.config import AugmentConfig
    from instseg.data.checks import load_split
    from instseg.augment.dataset import InstanceSegDataset

    records, _ = load_split(Path(a.data), "train")
    return InstanceSegDataset(
        records,
        imgsz=a.imgsz,
        mask_stride=a.stride,
        augment=AugmentConfig(),
        train=True,
        seed=0,
        buffer=128,
        cache=a.cache,
    )


def _ultralytics_dataset(a: argparse.Namespace, tmp: Path):
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    from ultralytics.cfg import get_cfg
    from ultralytics.data import YOLODataset

    from instseg.data.yaml_config import list_split_images, load_data_yaml

    spec = load_data_yaml(Path(a.data))
    images = list_split_images(spec, "train")
    img_dir = images[0].parent
    lbl_dir = img_dir.parent.parent / "labels" / img_dir.name
    (tmp / "images").mkdir()
    (tmp / "labels").mkdir()
    (tmp / "images" / img_dir.name).symlink_to(img_dir)
    (tmp / "labels" / img_dir.name).symlink_to(lbl_dir)
    hyp = get_cfg(
        overrides={
            "task": "segment",
            "imgsz": a.imgsz,
            "mask_ratio": a.stride,
            "overlap_mask": True,
            "plots": False,
        }
    )
    data = {"names": dict(enumerate(spec.names)), "nc": len(spec.names), "channels": 3}
    return YOLODataset(
        img_path=str(tmp / "images" / img_dir.name),
        imgsz=a.imgsz,
        cache=False,
        augment=True,
        hyp=hyp,
        prefix="",
        rect=False,
        batch_size=16,
        stride=32,
        pad=0.0,
        single_cls=False,
        data=data,
        task="segment",
    )


def _child(side: str, a: argparse.Namespace, q) -> None:
    import cv2

    cv2.setNumThreads(0)  # what Ultralytics sets at import; the same for both sides
    with tempfile.TemporaryDirectory() as tmp:
        ds = _instseg_dataset(a) if side == "instseg" else _ultralytics_dataset(a, Path(tmp))
        n = len(ds)
        for i in range(min(a.warmup, n)):
            ds[i]
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        for k in range(a.n):
            item = ds[(k * 7) % n]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if side == "instseg":
            held = ds.held_bytes()
        else:
            held = sum(v.nbytes for v in ds.ims if v is not None)
        q.put(
            {
                "side": side,
                "held_mb": held / 2**20,
                "sps": a.n / wall,
                "cpu_sps": a.n / cpu,
                "traced_peak_mb": peak / 2**20,
                "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rss_before_mb": rss0 / 1024,
                "keys": sorted(item),
            }
        )


def run(side: str, a: argparse.Namespace) -> dict:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(side, a, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[3] / "shared/datasets/coco128-seg/data.yaml")
    )
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--n", type=int, default=256, help="samples timed per run")
    ap.add_argument(
        "--warmup", type=int, default=128, help="samples before timing (fills both image buffers)"
    )
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--stride", type=int, default=4, help="mask stride (Ultralytics: mask_ratio)")
    ap.add_argument("--cache", choices=["ram"], default=None, help="instseg side: keep every decoded image")
    a = ap.parse_args()
    best: dict[str, dict] = {}
    for r in range(a.repeats):
        for side in ("ultralytics", "instseg") if r % 2 == 0 else ("instseg", "ultralytics"):
            res = run(side, a)
            print(
                f"run {r + 1} {side:12s} {res['sps']:7.1f} samples/s (cpu {res['cpu_sps']:7.1f}/s) "
                f"traced peak {res['traced_peak_mb']:7.1f} MB, peak RSS {res['rss_peak_mb']:7.1f} MB, "
                f"decoded images held {res['held_mb']:.1f} MB"
            )
            if side not in best or res["sps"] > best[side]["sps"]:
                best[side] = res
    u, i = best["ultralytics"], best["instseg"]
    print(
        f"\nbest of {a.repeats}: instseg {i['sps']:.1f} samples/s, ultralytics {u['sps']:.1f} samples/s, "
        f"ratio {i['sps'] / u['sps']:.2f} (cpu-time ratio {i['cpu_sps'] / u['cpu_sps']:.2f})"
    )
    print(
        f"peak memory: instseg traced {i['traced_peak_mb']:.1f} MB / RSS {i['rss_peak_mb']:.1f} MB; "
        f"ultralytics traced {u['traced_peak_mb']:.1f} MB / RSS {u['rss_peak_mb']:.1f} MB"
    )


if __name__ == "__main__":
    main()
