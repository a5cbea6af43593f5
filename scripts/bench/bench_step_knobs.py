"""What each speed knob of the training step does on this machine, measured against instseg's default in one
session (variants alternate round by round; medians of the per-step times):

  default        the engine's step: build_optimizer's optimizer (foreach on), EMA update, zero_grad(set_to_none)
  for-loop       the optimizer's per-tensor loop (foreach=False): what torch picks on CPU by itself
  fused          the fused optimizer kernel (fused=True)
  channels_last  model and images in channels-last memory format
  bf16           torch.autocast(bfloat16) around the forward (CPU autocast / CUDA autocast)
  cl+bf16        both
  compile        backbone and neck compiled in place (``train compile=true``), after --compile-warmup steps
  loader W/T     the whole iteration with the real DataLoader (augmentation included): W workers, T torch
                 threads (the split engine/threads.py picks, and the others)

    .venv/bin/python scripts/bench/bench_step_knobs.py --arch rtmdet-ins --model tiny --imgsz 320 --batch 8
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop_common import DEFAULT_DATA  # noqa: E402


def main() -> None:
    import torch

    from instseg.augment.dataset import InstanceSegDataset, collate
    from instseg.config import AugmentConfig, ScheduleConfig
    from instseg.data.checks import load_split
    from instseg.engine.ema import ModelEMA
    from instseg.engine.optim import build_optimizer
    from instseg.engine.schedule import resolve_schedule
    from instseg.engine.trainer import _targets_to, _train_step_module, compile_in_place
    from instseg.models.build import build_model
    from instseg.models.registry import get_architecture

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--arch", default="rtmdet-ins")
    p.add_argument("--model", default="tiny")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--variants", nargs="+",
                   default=["default", "for-loop", "fused", "channels_last", "bf16", "loader"])
    p.add_argument("--compile-warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    device = torch.device(a.device)
    arch = get_architecture(a.arch)
    records, _ = load_split(a.data, "train")
    ds = InstanceSegDataset(records, imgsz=a.imgsz, mask_stride=arch.mask_stride, augment=AugmentConfig(),
                            train=True)
    n_batches = a.steps + 1
    batches = [collate([ds[(k * a.batch + j) % len(ds)] for j in range(a.batch)])[:2] for k in range(n_batches)]
    torch.manual_seed(0)
    base = build_model(a.arch, a.model, len(arch_names(a.data)), imgsz=a.imgsz)
    sched = resolve_schedule(ScheduleConfig(), architecture=a.arch, default_recipe=arch.default_schedule,
                             epochs=10, nb=100, batch=a.batch, n_train=len(records), nc=1)

    def make(variant):
        model = copy.deepcopy(base).to(device).train()
        opt = build_optimizer(model, sched)
        for g in opt.param_groups:
            if variant == "for-loop":
                g["foreach"] = False
            if variant == "fused":
                g["foreach"], g["fused"] = False, True
        if variant in ("channels_last", "cl+bf16"):
            model = model.to(memory_format=torch.channels_last)
        if variant == "compile":
            compile_in_place(model)
        ema = ModelEMA(model)
        step = _train_step_module(model)
        return model, opt, ema, step

    def one(v, state, images, targets):
        model, opt, ema, step = state
        images = images.to(device)
        if v in ("channels_last", "cl+bf16"):
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=v in ("bf16", "cl+bf16")):
            losses = step(images, _targets_to(targets, device))
        loss = sum(losses.values())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(model)
        if device.type == "cuda":
            torch.cuda.synchronize()

    threads = torch.get_num_threads()
    loader_splits = [(0, threads), (1, max(1, threads - 1)), (1, threads), (2, threads)]
    variants = [v for v in a.variants if v != "loader"]
    if "loader" in a.variants:
        variants += [f"loader {w}/{t}" for w, t in loader_splits]
    states = {v: make(v) for v in variants if not v.startswith("loader")}
    times: dict[str, list[float]] = {v: [] for v in variants}
    for st_name, st in states.items():  # warm-up (compile: its graphs)
        for k in range(a.compile_warmup if st_name == "compile" else 1):
            one(st_name, st, *batches[k % n_batches])
    for r in range(a.rounds):
        for v in (variants if r % 2 == 0 else variants[::-1]):
            if v.startswith("loader"):
                w, t = (int(x) for x in v.split()[1].split("/"))
                times[v] += loader_steps(a, ds, base, sched, w, t, threads)
                continue
            for k in range(1, n_batches):
                t0 = time.perf_counter()
                one(v, states[v], *batches[k])
                times[v].append(time.perf_counter() - t0)
    ref = statistics.median(times["default"]) if times.get("default") else None
    print(f"\n{a.arch} {a.model}, imgsz {a.imgsz}, batch {a.batch}, device {a.device}, {threads} torch threads; "
          f"median s/step over {a.rounds} rounds x {a.steps} steps")
    for v, ts in times.items():
        med = statistics.median(ts)
        rel = f"{med / ref:.3f}x default" if ref else ""
        print(f"  {v:16s} {med:8.3f} s/step  {a.batch / med:7.2f} img/s  {rel}")


def arch_names(data: Path) -> list[str]:
    from instseg.data.yaml_config import load_data_yaml

    return list(load_data_yaml(data).names)


def loader_steps(a, ds, base, sched, workers: int, threads: int, default_threads: int) -> list[float]:
    """Per-iteration seconds of the real loop (DataLoader + step) with ``workers`` and ``threads``."""
    import torch

    from instseg.augment.dataset import collate, worker_init_fn
    from instseg.engine.ema import ModelEMA
    from instseg.engine.optim import build_optimizer
    from instseg.engine.trainer import _targets_to, _train_step_module

    torch.set_num_threads(threads)
    try:
        model = copy.deepcopy(base).train()
        opt, ema, step = build_optimizer(model, sched), ModelEMA(model), _train_step_module(model)
        loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=workers,
                                             collate_fn=collate, worker_init_fn=worker_init_fn,
                                             persistent_workers=False)
        out, it = [], iter(loader)
        next(it)  # worker start-up is paid once per run (persistent workers), not per step
        t0 = time.perf_counter()
        for k in range(a.steps):
            images, targets, _m = next(it)
            loss = sum(step(images, _targets_to(targets, torch.device("cpu"))).values())
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            ema.update(model)
            t1 = time.perf_counter()
            out.append(t1 - t0)
            t0 = t1
        del it
        return out
    finally:
        torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
