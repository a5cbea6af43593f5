"""Images/s of one Mask R-CNN training step: instseg's engine step vs torchvision's reference loop.

Both sides train the same torchvision model (same size, same random init, same letterboxed batches from
instseg's Dataset, batches pre-loaded so data loading is not timed):

* ``instseg``: the engine's step: schedule applied to the three parameter groups, ``forward_train`` through
  the contract wrapper (uint8 -> float, labels + 1), backward, optimizer step, zero_grad;
* ``reference``: torchvision ``references/detection/engine.py::train_one_epoch`` style: float image list,
  ``loss_dict = model(images, targets)``, ``sum``, zero_grad, backward, SGD(lr 0.005, momentum 0.9,
  wd 5e-4) step.

The two are timed in alternation (A B A B ...) so that machine load hits both alike.

    .venv/bin/python scripts/bench/bench_maskrcnn_step.py --data ../shared/datasets/fire-seg/data.yaml \
        --imgsz 320 --batch 2 --iters 6
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path


def load_batches(data: Path, imgsz: int, batch: int, n: int):
    from instseg.data.checks import load_split
    from instseg.augment.dataset import InstanceSegDataset, collate

    records, _ = load_split(data, "train")
    ds = InstanceSegDataset(records[: batch * n], imgsz=imgsz, mask_stride=1, augment=None, train=False)
    return [collate([ds[i * batch + j] for j in range(batch)])[:2] for i in range(n)]


def main() -> None:
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    from instseg.models.maskrcnn import build_maskrcnn
    from instseg.config import ScheduleConfig
    from instseg.engine.optim import apply_schedule, build_optimizer
    from instseg.engine.schedule import resolve_schedule

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--iters", type=int, default=6, help="timed iterations per side (after 1 warm-up each)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    batches = load_batches(args.data, args.imgsz, args.batch, args.iters + 1)
    nc = 1
    torch.manual_seed(0)
    ours = build_maskrcnn("r50-fpn", nc, imgsz=args.imgsz)
    ref = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=nc + 1, min_size=args.imgsz,
                                max_size=args.imgsz)
    ref.load_state_dict(copy.deepcopy(ours.model.state_dict()))
    ours.train(), ref.train()

    sched = resolve_schedule(ScheduleConfig(recipe="step"), architecture="maskrcnn", default_recipe="step",
                             epochs=1, nb=1000, batch=args.batch, n_train=1000, nc=nc)
    opt_ours = build_optimizer(ours, sched)
    opt_ref = torch.optim.SGD([p for p in ref.parameters() if p.requires_grad], lr=0.005, momentum=0.9,
                              weight_decay=5e-4)

    def step_ours(ni: int, images, targets) -> float:
        apply_schedule(opt_ours, sched, ni)
        loss = sum(ours.forward_train(images, targets).values())
        loss.backward()
        opt_ours.step()
        opt_ours.zero_grad(set_to_none=True)
        return float(loss.detach())

    def step_ref(images, targets) -> float:
        imgs = [im.float() / 255.0 for im in images]
        tg = [{"boxes": t["boxes"], "labels": t["labels"] + 1, "masks": t["masks"]} for t in targets]
        loss_dict = ref(imgs, tg)
        losses = sum(loss for loss in loss_dict.values())
        opt_ref.zero_grad()
        losses.backward()
        opt_ref.step()
        return float(losses.detach())

    t_ours, t_ref = [], []
    for k, (images, targets) in enumerate(batches):
        t0 = time.perf_counter()
        step_ours(k, images, targets)
        t1 = time.perf_counter()
        step_ref(images, targets)
        t2 = time.perf_counter()
        if k:  # the first iteration of each side is a warm-up
            t_ours.append(t1 - t0)
            t_ref.append(t2 - t1)
    for name, ts in (("instseg engine step", t_ours), ("torchvision reference", t_ref)):
        med = statistics.median(ts)
        print(f"{name:24s} median {med:.3f} s/iter  {args.batch / med:.2f} images/s  "
              f"(mean {args.batch * len(ts) / sum(ts):.2f} images/s over {len(ts)} iters, imgsz {args.imgsz}, "
              f"batch {args.batch}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
