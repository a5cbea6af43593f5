"""Detectron2 Mask R-CNN trained by instseg's engine vs Detectron2's own loop, on a few images of a dataset.

1. ``instseg train`` (the engine: instseg's Dataset, schedule, validation) on the first ``--n-train`` train
   images, ``--iters`` iterations: the loss per epoch, the mask mAP on ``--n-val`` val images, s/iter;
2. seconds per training step, timed in alternation (A B A B, medians) so machine load hits both alike, on
   the same model (one random init, copied) and input size:
   A = instseg: a batch from instseg's DataLoader, ``forward_train`` + backward + Adam step;
   B = Detectron2: ``SimpleTrainer.run_step`` (its ``DatasetMapper`` + ``build_detection_train_loader``
       reading the same images and polygons, ``ResizeShortestEdge`` to the same size, no flip).

    PYTHONPATH=src .venv/bin/python scripts/bench/bench_detectron2_step.py --data ../shared/datasets/fire-seg/data.yaml
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path


def subset(data: Path, out: Path, n_train: int, n_val: int) -> Path:
    """A data.yaml over the first images of each split (lists of paths; nothing copied)."""
    from instseg.data.yaml_config import load_data_yaml

    spec = load_data_yaml(data)
    for split, n in (("train", n_train), ("val", n_val)):
        images = sorted(p for src in spec.split_sources[split] for p in Path(src).rglob("*")
                        if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:n]
        (out / f"{split}.txt").write_text("".join(f"{p}\n" for p in images))
    yaml = out / "subset.yaml"
    yaml.write_text(f"path: {out}\ntrain: train.txt\nval: val.txt\nnames: {list(spec.names)!r}\n")
    return yaml


def instseg_run(data: Path, out: Path, imgsz: int, batch: int, iters: int, n_train: int) -> dict:
    from instseg.config import TrainConfig, apply_overrides
    from instseg import api

    epochs = max(1, -(-iters * batch // n_train))
    cfg = TrainConfig(data=data, architecture="detectron2-maskrcnn", model="r50-fpn", imgsz=imgsz, batch=batch,
                      epochs=epochs, device="cpu", workers=0, project=out, quiet=True, val_conf=0.001)
    cfg = apply_overrides(cfg, ["optimizer=Adam", "lr0=0.0001", "fliplr=0", "warmup_epochs=0"])
    result = api.train(cfg)
    rows = list(csv.DictReader(open(result.run.root / "results.csv")))
    nb = -(-n_train // batch)
    return {"epochs": epochs, "iters": epochs * nb, "loss": [round(float(r["train/loss"]), 3) for r in rows],
            "s_per_iter": sum(float(r["time"]) for r in rows) / (epochs * nb),
            "segm_mAP": result.metrics.get("segm_mAP"), "segm_mAP50": result.metrics.get("segm_mAP50"),
            "bbox_mAP": result.metrics.get("bbox_mAP")}


def step_times(data: Path, imgsz: int, batch: int, steps: int) -> dict:
    import copy

    import torch
    from detectron2.data import DatasetMapper, build_detection_train_loader
    from detectron2.engine import SimpleTrainer
    from detectron2.utils.events import EventStorage

    from instseg.augment.dataset import InstanceSegDataset, collate
    from instseg.data.yaml_config import load_data_yaml
    from instseg.engine.setup import load_records
    from instseg.models.detectron2 import build_detectron2_maskrcnn

    names = load_data_yaml(data).names
    records = load_records(data, "train")
    torch.manual_seed(0)
    ours = build_detectron2_maskrcnn("r50-fpn", len(names), imgsz=imgsz).train()
    theirs = copy.deepcopy(ours.model).train()
    from instseg.config import AugmentConfig

    plain = AugmentConfig(fliplr=0.0, mosaic=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, translate=0.0, scale=0.0,
                          brightness=0.0, contrast=0.0)  # resize only, as Detectron2's mapper here
    ds = InstanceSegDataset(records, imgsz=imgsz, mask_stride=1, augment=plain, train=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, collate_fn=collate, num_workers=0)
    dicts = [{"file_name": str(r.path), "height": r.height, "width": r.width, "image_id": i,
              "annotations": [_annotation(inst) for inst in r.instances if inst.polygons or inst.rle]}
             for i, r in enumerate(records)]
    mapper_cfg = ours.cfg.clone()
    mapper_cfg.defrost()
    mapper_cfg.INPUT.MASK_FORMAT = "bitmask"  # polygons and RLE alike (fire-seg's labels have both)
    d2_loader = build_detection_train_loader(dataset=dicts, mapper=DatasetMapper(mapper_cfg, is_train=True),
                                             total_batch_size=batch, num_workers=0)
    opt_a = torch.optim.Adam([p for p in ours.parameters() if p.requires_grad], lr=1e-4)
    opt_b = torch.optim.Adam([p for p in theirs.parameters() if p.requires_grad], lr=1e-4)
    trainer = SimpleTrainer(theirs, d2_loader, opt_b)
    it = iter(_forever(loader))
    a, b = [], []
    with EventStorage(0):
        for k in range(steps + 1):  # the first pair warms up and is not counted
            t0 = time.perf_counter()
            images, targets, _ = next(it)
            losses = ours.forward_train(images, targets)
            opt_a.zero_grad()
            sum(losses.values()).backward()
            opt_a.step()
            t1 = time.perf_counter()
            trainer.run_step()
            t2 = time.perf_counter()
            if k:
                a.append(t1 - t0)
                b.append(t2 - t1)
    return {"instseg_s": statistics.median(a), "detectron2_s": statistics.median(b),
            "ratio": statistics.median(a) / statistics.median(b), "steps": steps}


def _annotation(inst) -> dict:
    """One instseg Instance as a Detectron2 annotation dict (XYXY_ABS box; polygons or the COCO RLE)."""
    import numpy as np
    from detectron2.structures import BoxMode

    if inst.polygons:
        seg = [p.reshape(-1).tolist() for p in inst.polygons]
        pts = np.concatenate([p.reshape(-1, 2) for p in inst.polygons])
        box = [float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())]
    else:
        from pycocotools import mask as mask_util

        seg = dict(inst.rle, size=list(inst.rle["size"]))
        if isinstance(seg["counts"], list):  # uncompressed RLE
            seg = mask_util.frPyObjects(seg, *seg["size"])
        elif isinstance(seg["counts"], str):
            seg["counts"] = seg["counts"].encode()
        x, y, w, h = mask_util.toBbox(seg)
        box = [float(x), float(y), float(x + w), float(y + h)]
    if inst.bbox is not None:
        box = [float(v) for v in inst.bbox]
    return {"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": inst.cls, "segmentation": seg}


def _forever(loader):
    while True:
        yield from loader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--steps", type=int, default=6, help="timed step pairs")
    ap.add_argument("--n-train", type=int, default=8)
    ap.add_argument("--n-val", type=int, default=4)
    ap.add_argument("--steps-only", action="store_true", help="skip part 1 (the instseg run)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = subset(args.data, Path(tmp), args.n_train, args.n_val)
        if not args.steps_only:
            run = instseg_run(data, Path(tmp) / "runs", args.imgsz, args.batch, args.iters, args.n_train)
            print(json.dumps({"instseg_train": run}, indent=1))
            result["instseg_train"] = run
        steps = step_times(data, args.imgsz, args.batch, args.steps)
        print(json.dumps({"step_seconds": steps}, indent=1))
        print(f"step time ratio instseg/Detectron2 SimpleTrainer: {steps['ratio']:.3f}x")
        result["step_seconds"] = steps
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
