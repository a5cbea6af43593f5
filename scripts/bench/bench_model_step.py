"""Seconds per training step and per inference image of instseg's native models, on CPU, against
MMDetection's same model in the same run when mmdet is importable.

A training step = forward + losses + backward (no optimizer: the same for both), batch 2 of random images with
synthetic instances; inference = eval-mode forward + post-processing, one image at a time. Both sides get the
same weights (MMDetection's random init copied into instseg's model) and are timed in alternation (A B A B) so
that machine load hits both alike; medians reported.

    PYTHONPATH=src:scripts .venv/bin/python scripts/bench/bench_model_step.py          # instseg only
    PYTHONPATH=src:scripts /tmp/mmenv/bin/python scripts/bench/bench_model_step.py     # + MMDetection

Only torch/numpy and instseg's model code are needed (no cv2, pycocotools). Entries live in ``MODELS``:
(name, instseg builder, MMDetection builder or None, batch maker); add a family by adding a row.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable[[int], torch.nn.Module]  # num_classes -> instseg model
    build_mmdet: (
        Callable[[int], torch.nn.Module] | None
    )  # num_classes -> MMDetection model (None: no reference)


def _rtmdet_ins(size: str) -> Entry:
    def build(nc: int):
        from instseg.models.rtmdet_ins import build_rtmdet_ins

        return build_rtmdet_ins(size, nc)

    def build_mmdet(nc: int):
        from mmdet_rtmdet_ins_env import build_mmdet_rtmdet_ins

        return build_mmdet_rtmdet_ins(size, nc)[0]

    return Entry(f"rtmdet-ins-{size}", build, build_mmdet)


def _solov2(size: str) -> Entry:
    def build(nc: int):
        from instseg.models.solov2 import build_solov2

        # as MMDetection's config trains it (stem + layer1 frozen, BN in eval mode); instseg's from-scratch
        # default trains every layer, which costs more in backward and would not be the same work
        return build_solov2(size, nc, frozen_stages=1, norm_eval=True)

    def build_mmdet(nc: int):
        from compare_mmdet_solov2 import mmdet_model_cfg
        from mmdet.registry import MODELS as MMDET_MODELS
        from mmdet.utils import register_all_modules
        from mmengine.logging import MMLogger

        register_all_modules()
        MMLogger.get_current_instance().setLevel("ERROR")
        cfg = mmdet_model_cfg(size)
        cfg.mask_head.num_classes = nc
        model = MMDET_MODELS.build(cfg)
        model.init_weights()
        return model

    return Entry(f"solov2-{size}", build, build_mmdet)


MODELS: dict[str, Entry] = {
    e.name: e for e in (_rtmdet_ins("tiny"), _rtmdet_ins("s"), _solov2("nano"), _solov2("medium"))
}


def synthetic_batch(batch: int, imgsz: int, nc: int, seed: int = 0):
    """uint8 RGB images and instseg targets (masks at stride 4) plus full-resolution masks for MMDetection."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, 3, imgsz, imgsz), dtype=torch.uint8, generator=g)
    targets, full = [], []
    s = imgsz // 4
    for _ in range(batch):
        n = 4
        masks = torch.zeros(n, s, s, dtype=torch.uint8)
        boxes = []
        for j in range(n):
            x0, y0 = (torch.randint(0, s // 2, (2,), generator=g)).tolist()
            w, h = (torch.randint(4, s // 2, (2,), generator=g)).tolist()
            masks[j, y0 : y0 + h, x0 : x0 + w] = 1
            boxes.append([4.0 * x0, 4.0 * y0, 4.0 * (x0 + w), 4.0 * (y0 + h)])
        labels = torch.randint(0, nc, (n,), generator=g)
        targets.append({"labels": labels, "boxes": torch.tensor(boxes), "masks": masks})
        full.append(masks.repeat_interleave(4, 1).repeat_interleave(4, 2).numpy())
    return images, targets, full


def mmdet_inputs(ref, images, targets, full, training: bool):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    hw = tuple(images.shape[-2:])
    samples = []
    for t, f in zip(targets, full):
        s = DetDataSample(
            metainfo={
                "img_shape": hw,
                "ori_shape": hw,
                "pad_shape": hw,
                "batch_input_shape": hw,
                "scale_factor": (1.0, 1.0),
            }
        )
        s.gt_instances = InstanceData(
            bboxes=t["boxes"].clone(), labels=t["labels"].clone(), masks=BitmapMasks(f, *hw)
        )
        samples.append(s)
    data = ref.data_preprocessor({"inputs": list(images.flip(1)), "data_samples": samples}, training)
    return data["inputs"], data["data_samples"]


def bench(entry: Entry, imgsz: int, batch: int, iters: int, nc: int, with_mmdet: bool) -> None:
    torch.manual_seed(0)
    ours = entry.build(nc)
    ref = entry.build_mmdet(nc) if with_mmdet and entry.build_mmdet else None
    if ref is not None:
        ours.load_state_dict(ref.state_dict())
    images, targets, full = synthetic_batch(batch, imgsz, nc)
    sides: dict[str, tuple[Callable, Callable]] = {}

    def ours_train():
        sum(ours.forward_train(images, targets).values()).backward()

    def ours_infer():
        for i in range(batch):
            ours.predict(images[i : i + 1], score_thr=0.05, max_det=100)

    sides["instseg"] = (ours_train, ours_infer)
    if ref is not None:

        def ref_train():
            inputs, samples = mmdet_inputs(ref, images, targets, full, True)
            losses = ref.loss(inputs, samples)
            sum(sum(v) if isinstance(v, (list, tuple)) else v for v in losses.values()).backward()

        def ref_infer():
            with torch.no_grad():
                for i in range(batch):
                    inputs, samples = mmdet_inputs(
                        ref, images[i : i + 1], targets[i : i + 1], full[i : i + 1], False
                    )
                    ref.predict(inputs, samples, rescale=False)

        sides["mmdet"] = (ref_train, ref_infer)
    times = {k: ([], []) for k in sides}
    models = {"instseg": ours, "mmdet": ref}
    for it in range(iters + 1):
        for name, (train_fn, infer_fn) in sides.items():
            m = models[name]
            m.train()
            t0 = time.perf_counter()
            train_fn()
            t1 = time.perf_counter()
            m.zero_grad(set_to_none=True)
            m.eval()
            t2 = time.perf_counter()
            infer_fn()
            t3 = time.perf_counter()
            if it:  # the first round is a warm-up
                times[name][0].append(t1 - t0)
                times[name][1].append((t3 - t2) / batch)
    med = {k: (statistics.median(a), statistics.median(b)) for k, (a, b) in times.items()}
    for name, (tr, inf) in med.items():
        ratio = ""
        if name == "instseg" and "mmdet" in med:
            ratio = f"  ratio instseg/mmdet: train {tr / med['mmdet'][0]:.2f}x, infer {inf / med['mmdet'][1]:.2f}x"
        print(
            f"{entry.name:16s} {name:8s} train step {tr:.3f} s (batch {batch}, {imgsz}px)  "
            f"inference {inf:.3f} s/image{ratio}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["rtmdet-ins-tiny", "solov2-nano", "solov2-medium"], help=f"of: {', '.join(MODELS)}")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5, help="timed rounds (after 1 warm-up)")
    ap.add_argument("--classes", type=int, default=80)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--no-mmdet", action="store_true", help="skip MMDetection even where it imports")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import mmdet  # noqa: F401

        with_mmdet = not args.no_mmdet
    except ImportError:
        with_mmdet = False
        print("mmdet not importable here: instseg only (run with an MMDetection env's python to compare)")
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; valid: {', '.join(MODELS)}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    for name in args.models:
        bench(MODELS[name], args.imgsz, args.batch, args.iters, args.classes, with_mmdet)


if __name__ == "__main__":
    main()
