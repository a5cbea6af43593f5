"""The whole training loop, instseg vs the framework's own trainer on the same model, data, batch and imgsz:
images/s of an epoch (loading + augmentation + step + EMA + checkpoint) and seconds per validation pass
(at original resolution, with each side's COCO evaluator), measured in one session, sides alternating.

* instseg: ``instseg train`` (the CLI, in a child process), figures from its results.csv (``time``,
  ``time/val``) and the process wall time.
* RTMDet-Ins / SOLOv2 vs MMDetection 3.3's ``Runner`` (scripts/bench/mmdet_loop.py in the scratch
  environment of DEVELOPERS.md; skipped with the reason when absent): its packaged config, pipeline sizes
  scaled to --imgsz, its optimizer, schedule, EMA, a checkpoint every epoch, CocoMetric every epoch.
Every side validates with the same score threshold (``--val-conf``, instseg's 0.001: an early model then
emits max_det masks per image; MMDetection's and torchvision's own default is 0.05).

* Mask R-CNN vs a torchvision ``references/detection`` style loop (``--side torchvision``, a child
  process): PIL decode, ToTensor, horizontal flip, ``maskrcnn_resnet50_fpn(min_size=max_size=imgsz)``,
  SGD(0.02 * batch / 16, momentum 0.9, wd 1e-4) with linear warm-up, a checkpoint per epoch, pycocotools
  COCOeval (segm + bbox) of the masks torchvision pastes at original size.
* YOLO-seg vs plain Ultralytics (``YOLO("yolo11n-seg.yaml").train(...)``, what ``yolo segment train`` runs,
  with the arguments instseg resolves): whole-run wall, Ultralytics' validation included on both sides.

The first epoch of every side pays warm-up costs (imports done, but first allocations, caches, worker
start): the table shows epoch 1 and the mean of the later epochs. No test asserts these times.

    .venv/bin/python scripts/bench/bench_train_loop.py --arch rtmdet-ins --model tiny --imgsz 320 --batch 8 \\
        --epochs 3 --train-images 64 --val-images 24
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_common import (DEFAULT_DATA, MMDET_FAMILIES, REPO, coco_map, mmdet_available, ratio,  # noqa: E402
                         run_mmdet, subset_dataset, torchvision_results)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


# ------------------------------------------------------------------------------------------------ instseg
def run_instseg(a, data: dict, work: Path, i: int) -> dict:
    project = work / f"instseg_{i}"
    cmd = [sys.executable, "-m", "instseg", "train", "--data", str(data["yaml"]), "-a", a.arch, "-m", a.model,
           "--imgsz", str(a.imgsz), "--batch", str(a.batch), "--epochs", str(a.epochs), "--device", a.device,
           "--workers", str(a.workers), "--project", str(project), "--name", "run", "--no-report",
           "--quiet", f"val_conf={a.val_conf}", *a.instseg_args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        raise RuntimeError(f"instseg train exited with {r.returncode}")
    with (project / "run" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    if (project / "run" / "ultralytics_results.csv").is_file():  # a YOLO run: the same figures as the plain side
        return {"epochs": _ultralytics_epochs(project / "run" / "ultralytics_results.csv", data["n_train"]),
                "wall_s": wall, "run": str(project / "run")}
    epochs = [{"train_s": float(row["time"]), "val_s": float(row["time/val"]) if row.get("time/val") else None,
               "n_train": data["n_train"], "segm_mAP": float(row["metrics/segm_mAP"] or "nan")} for row in rows]
    return {"epochs": epochs, "wall_s": wall, "run": str(project / "run")}


# -------------------------------------------------------------------------------------------------- mmdet
def run_mmdet_side(a, data: dict, work: Path, i: int) -> dict:
    out = work / f"mmdet_train_{i}.json"
    args = ["train", "--arch", a.arch, "--model", a.model, "--names", *data["names"],
            "--train-json", str(data["train_json"]), "--train-images", str(data["train_images_dir"]),
            "--val-json", str(data["val_json"]), "--val-images", str(data["val_images_dir"]),
            "--imgsz", str(a.imgsz), "--batch", str(a.batch), "--epochs", str(a.epochs),
            "--workers", str(a.workers), "--work-dir", str(work / f"mmdet_work_{i}"), "--out", str(out),
            "--conf", str(a.val_conf)]
    if a.amp:
        args.append("--amp")
    t0 = time.perf_counter()
    res = run_mmdet(args)
    return {**res, "wall_s": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------ torchvision loop
def torchvision_loop(a) -> None:
    """The reference side for Mask R-CNN, in its own process: writes --out."""
    import math

    import numpy as np
    import torch
    from PIL import Image
    from pycocotools.coco import COCO
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    from torchvision.transforms import functional as TF


    torch.manual_seed(a.seed)
    dev = torch.device("cpu" if a.device in ("", "cpu") else f"cuda:{a.device}" if a.device.isdigit() else a.device)
    coco_train, coco_val = COCO(str(a.train_json)), COCO(str(a.val_json))

    class CocoMasks(torch.utils.data.Dataset):  # references/detection: CocoDetection + ConvertCocoPolysToMask
        def __init__(self, coco, root, train):
            self.coco, self.root, self.train = coco, Path(root), train
            self.ids = sorted(coco.imgs)

        def __len__(self):
            return len(self.ids)

        def __getitem__(self, i):
            info = self.coco.imgs[self.ids[i]]
            img = TF.to_tensor(Image.open(self.root / info["file_name"]).convert("RGB"))
            anns = [x for x in self.coco.imgToAnns[info["id"]] if not x.get("iscrowd")]
            h, w = info["height"], info["width"]
            boxes = torch.tensor([[x["bbox"][0], x["bbox"][1], x["bbox"][0] + x["bbox"][2],
                                   x["bbox"][1] + x["bbox"][3]] for x in anns], dtype=torch.float32).reshape(-1, 4)
            # pycocotools decodes polygons and RLE alike, as references/detection's ConvertCocoPolysToMask does
            masks = torch.from_numpy(np.stack([self.coco.annToMask(x) for x in anns])
                                     if anns else np.zeros((0, h, w), np.uint8))
            labels = torch.tensor([x["category_id"] for x in anns], dtype=torch.int64)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            target = {"boxes": boxes[keep], "labels": labels[keep], "masks": masks[keep], "image_id": info["id"]}
            if self.train and torch.rand(1) < 0.5:
                img = img.flip(-1)
                b = target["boxes"].clone()
                b[:, [0, 2]] = w - target["boxes"][:, [2, 0]]
                target["boxes"], target["masks"] = b, target["masks"].flip(-1)
            return img, target

    def collate(batch):
        return tuple(zip(*batch))

    train_ds, val_ds = CocoMasks(coco_train, a.train_dir, True), CocoMasks(coco_val, a.val_dir, False)
    train_ld = torch.utils.data.DataLoader(train_ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                           collate_fn=collate)
    val_ld = torch.utils.data.DataLoader(val_ds, batch_size=1, shuffle=False, num_workers=a.workers,
                                         collate_fn=collate)
    nc = len(coco_train.cats)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=nc + 1, min_size=a.imgsz,
                                  max_size=a.imgsz, box_score_thresh=a.val_conf).to(dev)
    scaler = torch.amp.GradScaler("cuda", enabled=a.amp and dev.type == "cuda")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.02 * a.batch / 16, momentum=0.9, weight_decay=1e-4)
    warm = min(1000, len(train_ld) - 1)
    out = {"epochs": []}
    cat_ids = sorted(coco_val.cats)
    for epoch in range(a.epochs):
        model.train()
        sched = (torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.001, total_iters=warm)
                 if epoch == 0 and warm > 0 else None)
        t0 = time.perf_counter()
        for images, targets in train_ld:
            tg = [{k: v.to(dev) for k, v in t.items() if k != "image_id"} for t in targets]
            for t in tg:
                t["labels"] = t["labels"] - min(cat_ids) + 1
            with torch.autocast(dev.type, enabled=scaler.is_enabled()):
                losses = sum(model([im.to(dev) for im in images], tg).values())
            if not math.isfinite(float(losses)):
                print(f"non-finite loss {float(losses)} (the reference loop would stop here; timing goes on)")
            opt.zero_grad()
            scaler.scale(losses).backward()
            # instseg's Mask R-CNN default (train_defaults clip_grad 10): from random init the unclipped
            # reference diverges within an epoch, and steps on NaN losses time another computation
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            scaler.step(opt)
            scaler.update()
            if sched is not None:
                sched.step()
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch},
                   Path(a.work_dir) / "checkpoint.pth")
        t1 = time.perf_counter()
        model.eval()
        results = []
        with torch.no_grad():
            for images, targets in val_ld:
                for o, t in zip(model([im.to(dev) for im in images]), targets):
                    o = {k: v.cpu() for k, v in o.items()}
                    results += torchvision_results(o, t["image_id"], lambda label: label - 1 + min(cat_ids))
        stats = coco_map(coco_val, results)
        t2 = time.perf_counter()
        out["epochs"].append({"train_s": t1 - t0, "val_s": t2 - t1, "n_train": len(train_ds),
                              "segm_mAP": stats.get("segm")})
        Path(a.out).write_text(json.dumps(out, indent=1))


def run_torchvision_side(a, data: dict, work: Path, i: int) -> dict:
    out, wd = work / f"tv_train_{i}.json", work / f"tv_work_{i}"
    wd.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--side", "torchvision", "--train-json", str(data["train_json"]),
           "--train-dir", str(data["train_images_dir"]), "--val-json", str(data["val_json"]),
           "--val-dir", str(data["val_images_dir"]), "--imgsz", str(a.imgsz), "--batch", str(a.batch),
           "--epochs", str(a.epochs), "--workers", str(a.workers), "--work-dir", str(wd), "--out", str(out),
           "--val-conf", str(a.val_conf), "--device", a.device] + (["--amp"] if a.amp else [])
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        raise RuntimeError(f"torchvision loop exited with {r.returncode}")
    return {**json.loads(out.read_text()), "wall_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------- ultralytics
def run_ultralytics_side(a, data: dict, work: Path, i: int) -> dict:
    cmd = [sys.executable, __file__, "--side", "ultralytics", "--data", str(data["yaml"]), "--arch", a.arch,
           "--model", a.model, "--imgsz", str(a.imgsz), "--batch", str(a.batch), "--epochs", str(a.epochs),
           "--workers", str(a.workers), "--device", a.device, "--work-dir", str(work / f"ul_{i}")]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        raise RuntimeError(f"ultralytics side exited with {r.returncode}")
    return {"epochs": _ultralytics_epochs(work / f"ul_{i}" / "run" / "results.csv", data["n_train"]),
            "wall_s": time.perf_counter() - t0}


def _ultralytics_epochs(csv_path: Path, n_train: int) -> list[dict]:
    """Per-epoch seconds (train + Ultralytics' own validation) from Ultralytics' results.csv's cumulative
    'time' (instseg keeps Ultralytics' CSV as ultralytics_results.csv): the same measure on both sides."""
    with csv_path.open() as f:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    times = [float(r["time"]) for r in rows]
    return [{"train_s": t - (times[k - 1] if k else 0.0), "val_s": None, "n_train": n_train,
             "segm_mAP": float(rows[k].get("metrics/mAP50-95(M)") or "nan")} for k, t in enumerate(times)]


def ultralytics_plain(a) -> None:
    from ultralytics import YOLO

    from instseg.backends.ultralytics import configure_offline
    from instseg.backends.ultralytics_args import model_stem, resolve_ultralytics_args
    from instseg.config import TrainConfig

    configure_offline(quiet=True)
    cfg = TrainConfig(data=Path(a.data), architecture=a.arch, model=a.model, epochs=a.epochs, batch=a.batch,
                      imgsz=a.imgsz, device=a.device, workers=a.workers, quiet=True)
    args = resolve_ultralytics_args(cfg, Path(a.work_dir) / "run")
    YOLO(f"{model_stem(a.arch, a.model)}.yaml", task="segment").train(**args)


# ----------------------------------------------------------------------------------------------- report
def summarize(name: str, runs: list[dict]) -> dict:
    first = [r["epochs"][0] for r in runs if r["epochs"]]
    later = [e for r in runs for e in r["epochs"][1:]]

    def ips(eps):
        return statistics.median(e["n_train"] / e["train_s"] for e in eps) if eps else None

    def val(eps):
        v = [e["val_s"] for e in eps if e.get("val_s") is not None]
        return statistics.median(v) if v else None

    return {"name": name, "ips_epoch1": ips(first), "ips_later": ips(later), "val_s": val(first + later),
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "segm_mAP_last": runs[-1]["epochs"][-1].get("segm_mAP") if runs[-1]["epochs"] else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", choices=["torchvision", "ultralytics"], help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--arch", default="rtmdet-ins")
    p.add_argument("--model", default="tiny")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-images", type=int, default=64, help="first N train images with labels (0 = all)")
    p.add_argument("--val-images", type=int, default=24, help="first N val images (0 = all)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers, the same for both sides")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="CUDA mixed precision on both sides")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--val-conf", type=float, default=0.001,
                   help="score threshold of every side's validation (instseg's val_conf; MMDetection's and "
                        "torchvision's own defaults are 0.05)")
    p.add_argument("--reference", choices=["auto", "none"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--keep", type=Path, help="copy instseg's last run folder here (its best.pt feeds bench_val)")
    p.add_argument("--profile", action="store_true",
                   help="print torch.profiler's top-10 ops of instseg training steps (in this process)")
    # the child sides
    p.add_argument("--train-json", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--train-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--val-json", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--val-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work-dir", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("instseg_args", nargs="*", help="extra KEY=VALUE settings for instseg train")
    a = p.parse_args()
    if a.side == "torchvision":
        torchvision_loop(a)
        return
    if a.side == "ultralytics":
        ultralytics_plain(a)
        return

    family = a.arch
    work = Path(tempfile.mkdtemp(prefix="bench_loop_"))
    data = subset_dataset(a.data, work / "data", a.train_images or None, a.val_images or None,
                          coco=family in MMDET_FAMILIES or family == "maskrcnn")
    reference, why_not = None, None
    if a.reference == "auto":
        if family in MMDET_FAMILIES:
            why_not = mmdet_available()
            reference = ("MMDetection Runner", run_mmdet_side) if why_not is None else None
        elif family == "maskrcnn":
            reference = ("torchvision references loop", run_torchvision_side)
        elif family.startswith("yolo"):
            reference = ("plain Ultralytics", run_ultralytics_side)
        else:
            why_not = f"no reference trainer for {a.arch} in this script"
    runs: dict[str, list[dict]] = {"instseg": [], "reference": []}
    for i in range(a.repeats):
        order = ["instseg", "reference"] if i % 2 == 0 else ["reference", "instseg"]
        for side in order:
            if side == "instseg":
                runs["instseg"].append(run_instseg(a, data, work, i))
            elif reference:
                runs["reference"].append(reference[1](a, data, work, i))
    if a.keep and runs["instseg"]:
        import shutil

        shutil.copytree(runs["instseg"][-1]["run"], a.keep, dirs_exist_ok=True)
    if a.profile:
        profile_steps(a, data)

    print(f"\n{a.arch} {a.model}: {data['n_train']} train / {data['n_val']} val images, imgsz {a.imgsz}, batch "
          f"{a.batch}, {a.epochs} epochs, workers {a.workers}, device {a.device}, {a.repeats} repeat(s)")
    print(f"{'':30s} {'img/s ep1':>10s} {'img/s later':>12s} {'val s/pass':>11s} {'wall s':>8s} {'segm mAP':>9s}")
    table = {"setup": {k: str(v) for k, v in vars(a).items()}, "n_train": data["n_train"], "n_val": data["n_val"]}
    names = {"instseg": "instseg train", "reference": reference[0] if reference else None}
    for side in ("instseg", "reference"):
        if not runs[side]:
            continue
        s = summarize(names[side], runs[side])
        table[side] = s

        def f(v, fmt):
            return format(v, fmt) if v is not None else format("-", ">" + fmt.split(".")[0])

        print(f"{s['name']:30s} {f(s['ips_epoch1'], '10.2f')} {f(s['ips_later'], '12.2f')} "
              f"{f(s['val_s'], '11.2f')} {f(s['wall_s'], '8.1f')} {f(s['segm_mAP_last'], '9.4f')}")
    if runs["reference"]:
        o, r = table["instseg"], table["reference"]
        key = "ips_later" if o["ips_later"] and r["ips_later"] else "ips_epoch1"
        table["time_ratio_epoch"] = r[key] / o[key]  # time per image, instseg / reference
        table["time_ratio_wall"] = o["wall_s"] / r["wall_s"]
        line = (f"time per training image instseg/reference: {table['time_ratio_epoch']:.3f}x ({key}); "
                f"whole run wall: {ratio(o['wall_s'], r['wall_s'])}")
        if o["val_s"] and r["val_s"]:
            table["time_ratio_val"] = o["val_s"] / r["val_s"]
            line += f"; validation pass: {ratio(o['val_s'], r['val_s'])}"
        print(line + "  (targets: epoch <= 0.8x, validation <= 0.5x, YOLO wall <= 1.02x)")
    else:
        print(f"reference not run: {why_not or 'none requested'}")
    if a.json:
        a.json.write_text(json.dumps(table, indent=1))


def profile_steps(a, data: dict, steps: int = 4) -> None:
    """torch.profiler's top-10 ops (self CPU time) of ``steps`` instseg training steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from instseg.augment.dataset import InstanceSegDataset, collate
    from instseg.config import AugmentConfig
    from instseg.data.checks import load_split
    from instseg.engine.trainer import _targets_to, _train_step_module
    from instseg.models.build import build_model
    from instseg.models.registry import get_architecture

    records, _ = load_split(data["yaml"], "train")
    arch = get_architecture(a.arch)
    ds = InstanceSegDataset(records, imgsz=a.imgsz, mask_stride=arch.mask_stride, augment=AugmentConfig(),
                            train=True)
    batches = [collate([ds[(k * a.batch + j) % len(ds)] for j in range(a.batch)]) for k in range(steps + 1)]
    model = build_model(a.arch, a.model, len(data["names"]), imgsz=a.imgsz).train()
    step = _train_step_module(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def one(images, targets):
        loss = sum(step(images, _targets_to(targets, torch.device("cpu"))).values())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    one(*batches[0][:2])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for images, targets, _m in batches[1:]:
            one(images, targets)
    print(f"instseg training step ({a.arch} {a.model}, batch {a.batch}, imgsz {a.imgsz}), top 10 ops by self CPU:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


if __name__ == "__main__":
    main()
