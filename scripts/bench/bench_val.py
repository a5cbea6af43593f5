"""Seconds per image of a validation pass at original resolution, instseg vs the framework's own loop, on the
same weights and images, measured in one session.

* instseg: ``engine.validate.validate`` (what ``instseg train`` runs every epoch and ``instseg eval`` runs):
  letterboxed batches, the model's ``predict`` (conf 0.001, max_det 100), masks mapped back to the original
  image and RLE-encoded, instseg's COCO evaluator (segm + bbox).
* mmdet (RTMDet-Ins, SOLOv2): MMDetection 3.3's ``runner.test()`` with CocoMetric on the same state_dict
  (instseg's native models share MMDetection's keys), in the scratch environment (DEVELOPERS.md);
  skipped with the reason when it is absent.
* ultralytics (YOLO-seg): ``YOLO(weights).val()`` vs instseg's evaluation of the same ``.pt``
  (``api.evaluate_weights``: Ultralytics' predictor, masks at original size, instseg's evaluator).

Both figures are printed with the forward pass (backbone + neck + head, post-processing excluded) included
and excluded; the sides alternate ``--repeats`` times and the medians are compared. Weights: ``--weights``
(an instseg checkpoint), else a random init (an early model: 100 detections per image at conf 0.001).

    .venv/bin/python scripts/bench/bench_val.py --arch rtmdet-ins --model tiny --imgsz 320 --val-images 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_common import (DEFAULT_DATA, MMDET_FAMILIES, coco_map, mmdet_available, ratio, run_mmdet,  # noqa: E402
                         subset_dataset, torchvision_results)


def _instseg_model(a, names):
    import torch

    from instseg.engine.checkpoint import load_checkpoint, model_state
    from instseg.models.build import build_model

    torch.manual_seed(a.seed)
    model = build_model(a.arch, a.model, len(names), imgsz=a.imgsz)
    if a.weights:
        model.load_state_dict(model_state(load_checkpoint(a.weights)))
    from instseg.engine.predict import for_inference

    return for_inference(model.eval().to(_device(a.device)), _device(a.device))  # as instseg eval/predict


def _device(spec: str):
    import torch

    return torch.device("cpu" if spec in ("", "cpu") else f"cuda:{spec}" if spec.isdigit() else spec)


def run_instseg(a, data: dict, model, profile: bool = False) -> dict:
    """One timed validation pass; forward / post-processing / evaluation split by wrapping the calls."""
    import torch

    import instseg.engine.validate as V
    import instseg.evaluation as E
    from instseg.data.checks import load_split

    records, _ = load_split(data["yaml"], "val")
    gt, records = V.ground_truth(records, data["names"])  # built once per run by the trainer, so not timed
    spent = {"forward_s": 0.0, "postprocess_s": 0.0, "to_original_s": 0.0, "metric_s": 0.0}
    fwd_name = "forward_heads" if hasattr(model, "forward_heads") else "forward"
    originals = (getattr(model, fwd_name), model.predict, V.to_image_prediction, E.evaluate)

    def timed(fn, key, minus=None):
        def wrapper(*args, **kw):
            t = time.perf_counter()
            f0 = spent["forward_s"]
            try:
                return fn(*args, **kw)
            finally:
                spent[key] += time.perf_counter() - t - (spent["forward_s"] - f0 if minus else 0.0)
        return wrapper

    setattr(model, fwd_name, timed(originals[0], "forward_s"))
    model.predict = timed(originals[1], "postprocess_s", minus=True)
    V.to_image_prediction = timed(originals[2], "to_original_s")
    E.evaluate = timed(originals[3], "metric_s")
    try:
        t0 = time.perf_counter()
        prof = None
        if profile:
            from torch.profiler import ProfilerActivity, profile as tprofile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
            prof = tprofile(activities=acts)
            prof.__enter__()
        with torch.no_grad():
            metrics, _m, _res = V.validate(model, records, data["names"], imgsz=a.imgsz, mask_stride=a.mask_stride,
                                           batch=a.batch, device=_device(a.device), workers=a.workers, gt=gt)
        total = time.perf_counter() - t0
        if prof is not None:
            prof.__exit__(None, None, None)
            print("instseg validation, top 10 ops by self CPU time:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    finally:
        setattr(model, fwd_name, originals[0])
        model.predict, V.to_image_prediction, E.evaluate = originals[1], originals[2], originals[3]
        del model.predict  # the instance attribute shadowed the method
        if fwd_name in vars(model):
            delattr(model, fwd_name)
    return {"total_s": total, **spent, "n_images": len(records), "segm_mAP": metrics.get("segm_mAP")}


def run_mmdet_side(a, data: dict, state_path: Path, work: Path, i: int) -> dict:
    out = work / f"mmdet_val_{i}.json"
    args = ["val", "--arch", a.arch, "--model", a.model, "--names", *data["names"],
            "--val-json", str(data["val_json"]), "--val-images", str(data["val_images_dir"]),
            "--imgsz", str(a.imgsz), "--batch", str(a.batch), "--workers", str(a.workers),
            "--weights", str(state_path), "--work-dir", str(work / f"mmdet_work_{i}"), "--out", str(out),
            "--conf", "0.001"]
    r = run_mmdet(args)
    return {"total_s": r["test_s"], "forward_s": r["forward_s"], "metric_s": r["metric_s"],
            "n_images": r["n_images"], "segm_mAP": r.get("segm_mAP")}


def run_torchvision_side(a, data: dict, tv_model) -> dict:
    """references/detection's evaluate() on the same torchvision module and weights: each original image
    (PIL, to_tensor) through the model (its transform resizes to imgsz and pastes masks back at the original
    size), masks > 0.5, pycocotools encode per mask, pycocotools COCOeval (segm + bbox)."""
    import torch
    from PIL import Image
    from pycocotools.coco import COCO
    from torchvision.transforms import functional as TF

    coco = COCO(str(data["val_json"]))
    root = Path(data["val_images_dir"])
    dev = _device(a.device)
    cat_ids = sorted(coco.cats)
    heads = tv_model.roi_heads
    heads.score_thresh, heads.detections_per_img = 0.001, 100
    t0 = time.perf_counter()
    forward = 0.0
    results = []
    with torch.no_grad():
        for image_id in sorted(coco.imgs):
            info = coco.imgs[image_id]
            img = TF.to_tensor(Image.open(root / info["file_name"]).convert("RGB")).to(dev)
            t = time.perf_counter()
            o = {k: v.cpu() for k, v in tv_model([img])[0].items()}
            forward += time.perf_counter() - t
            results += torchvision_results(o, image_id, lambda label: cat_ids[label - 1])
    t1 = time.perf_counter()
    stats = coco_map(coco, results)
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "model_s": forward, "metric_s": t2 - t1, "n_images": len(coco.imgs),
            "n_dets": len(results), "segm_mAP": stats.get("segm")}


def run_yolo(a, data: dict, work: Path) -> tuple[dict, dict]:
    """(instseg, ultralytics) timings of evaluating one YOLO .pt on the val split."""
    from ultralytics import YOLO

    from instseg import api
    from instseg.backends.ultralytics import configure_offline
    from instseg.contract import PredictConfig

    configure_offline(quiet=True)
    t0 = time.perf_counter()
    cfg = PredictConfig(imgsz=a.imgsz, conf=0.001, batch=a.batch, device=a.device)
    ours = api.evaluate_weights(a.weights, data["yaml"], "val", cfg).to_dict()
    t1 = time.perf_counter()
    YOLO(str(a.weights)).val(data=str(data["yaml"]), imgsz=a.imgsz, batch=a.batch, device=a.device, conf=0.001,
                             plots=False, verbose=False, project=str(work), name="val", exist_ok=True)
    t2 = time.perf_counter()
    n = data["n_val"]
    return ({"total_s": t1 - t0, "n_images": n, "segm_mAP": (ours or {}).get("segm_mAP")},
            {"total_s": t2 - t1, "n_images": n})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--arch", default="rtmdet-ins")
    p.add_argument("--model", default="tiny")
    p.add_argument("--weights", type=Path, help="an instseg checkpoint (YOLO: an Ultralytics .pt); else random init")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, 0, cuda:0")
    p.add_argument("--val-images", type=int, default=50, help="first N val images (0 = all)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", choices=["auto", "none"], default="auto")
    p.add_argument("--profile", action="store_true", help="torch.profiler top-10 ops of one instseg pass")
    p.add_argument("--json", type=Path, help="also write the figures here")
    a = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_val_"))
    family = a.arch.split(":")[0]
    is_yolo = family.startswith("yolo")
    data = subset_dataset(a.data, work / "data", 1, a.val_images or None,
                          coco=family in MMDET_FAMILIES or family == "maskrcnn")
    rows: dict[str, list[dict]] = {"instseg": [], "reference": []}
    ref_name, why_not = None, None
    if is_yolo:
        if not a.weights:
            sys.exit("YOLO: give --weights (an Ultralytics .pt, e.g. a run's weights/best.pt)")
        ref_name = "ultralytics val"
        for i in range(a.repeats):
            ours, theirs = run_yolo(a, data, work)
            rows["instseg"].append(ours)
            rows["reference"].append(theirs)
    else:
        from instseg.models.registry import get_architecture

        a.mask_stride = get_architecture(a.arch).mask_stride
        model = _instseg_model(a, data["names"])
        state_path = work / "state.pth"
        if family in MMDET_FAMILIES and a.reference == "auto":
            why_not = mmdet_available()
            if why_not is None:
                import torch

                torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, state_path)
                ref_name = "mmdet test loop"
        elif family == "maskrcnn" and a.reference == "auto":
            import copy

            import torch

            # the same torchvision module and weights, in the default memory format, as a user runs it
            tv_model = copy.deepcopy(model.model).to(memory_format=torch.contiguous_format).eval()
            ref_name = "torchvision evaluate"
        elif a.reference == "auto":
            why_not = f"no reference loop for {a.arch} in this script"
        run_instseg(a, data, model)  # warm-up (first-use imports, allocator)
        for i in range(a.repeats):  # alternate the order so drift of a shared machine hits both alike
            order = ["instseg", "reference"] if i % 2 == 0 else ["reference", "instseg"]
            for side in order:
                if side == "instseg":
                    rows["instseg"].append(run_instseg(a, data, model))
                elif ref_name == "torchvision evaluate":
                    rows["reference"].append(run_torchvision_side(a, data, tv_model))
                elif ref_name:
                    rows["reference"].append(run_mmdet_side(a, data, state_path, work, i))
        if a.profile:
            run_instseg(a, data, model, profile=True)

    def per_image(side: str, key: str) -> float | None:
        vals = [r[key] / r["n_images"] for r in rows[side] if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    print(f"\n{a.arch} {a.model}, {data['n_val']} val images, imgsz {a.imgsz}, batch {a.batch}, "
          f"workers {a.workers}, weights {a.weights or 'random init'}; medians of {a.repeats}")
    summary: dict = {"setup": {k: str(v) for k, v in vars(a).items()}, "n_val": data["n_val"]}
    for side, label in (("instseg", "instseg validate"), ("reference", ref_name)):
        if not rows[side]:
            continue
        tot, fwd = per_image(side, "total_s"), per_image(side, "forward_s") or None  # 0: not separable
        parts = {k: per_image(side, k) for k in ("forward_s", "postprocess_s", "to_original_s", "model_s", "metric_s")}
        summary[side] = {"name": label, "s_per_image": tot, "s_per_image_without_forward":
                         (tot - fwd) if fwd is not None else None, **{f"{k}_per_image": v for k, v in parts.items()},
                         "segm_mAP": rows[side][-1].get("segm_mAP")}
        extra = "  ".join(f"{k[:-2]} {v * 1000:.1f}" for k, v in parts.items() if v)
        m = rows[side][-1].get("segm_mAP")
        print(f"{label:18s} {tot * 1000:8.1f} ms/image"
              + (f"  without forward {(tot - fwd) * 1000:7.1f} ms/image" if fwd is not None else "")
              + (f"   [{extra} ms/image]" if extra else "") + (f"  segm mAP {m:.4f}" if isinstance(m, float) else ""))
    if rows["reference"]:
        o, r = summary["instseg"], summary["reference"]
        summary["ratio"] = o["s_per_image"] / r["s_per_image"]
        line = f"ratio instseg/{ref_name}: {ratio(o['s_per_image'], r['s_per_image'])}"
        if o["s_per_image_without_forward"] is not None and r["s_per_image_without_forward"] is not None:
            summary["ratio_without_forward"] = o["s_per_image_without_forward"] / r["s_per_image_without_forward"]
            line += (f" (forward excluded: "
                     f"{ratio(o['s_per_image_without_forward'], r['s_per_image_without_forward'])}); target <= 0.5x")
        print(line)
    else:
        print(f"reference not run: {why_not or 'none requested'}")
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
