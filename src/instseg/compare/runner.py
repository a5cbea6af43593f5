"""``instseg compare``: train (or collect) runs under one protocol, score them on one ground truth, time them,
bootstrap them, and write ``compare.json`` / ``compare.csv``.

Train mode: one ordinary run folder per ``-a ARCH:SIZE`` (and seed) under ``--out``, so ``instseg report``
and ``instseg compare RUN_DIR...`` work on them. An entry that fails does not stop the others; the table
says why it failed. Re-running the same command resumes: an entry whose folder holds metrics.json under the
same protocol is not retrained; one that stopped mid-way continues from its last.pt.
"""

from __future__ import annotations

import datetime
import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from instseg.compare.runs import CompareError, Entry, check_same_ground_truth, read_run

log = logging.getLogger(__name__)


@dataclass
class Protocol:
    """What every trained entry shares (written into compare.json)."""

    data: Path
    epochs: int = 100
    time: float | None = None  # hours per entry (overrides epochs: each trainer re-plans its epochs to fit)
    imgsz: int | None = None
    batch: int | None = None
    schedule: str = "ultralytics"
    augment: str = "ultralytics"
    device: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])
    workers: int = 4
    split: str = "val"
    overrides: list[str] = field(default_factory=list)  # key=value settings for every entry (`instseg train`'s)


def parse_spec(spec: str) -> tuple[str, str]:
    """``ARCH:SIZE`` (or ``ARCH``: its default size) -> (architecture, size), checked against the registry."""
    from instseg.config import ConfigError
    from instseg.models.registry import ARCHITECTURES, get_architecture

    arch, _, size = spec.partition(":")
    if arch not in ARCHITECTURES:
        raise ConfigError(f"-a {spec}: unknown architecture {arch!r}; valid: {', '.join(sorted(ARCHITECTURES))} "
                          "(see `instseg list-models`)")
    a = get_architecture(arch)
    size = size or a.default_size
    if size not in a.sizes:
        raise ConfigError(f"-a {spec}: {arch} has no size {size!r}; valid: {', '.join(a.sizes)}")
    if a.status != "available":
        raise ConfigError(f"-a {spec}: {arch} is not trainable yet (status {a.status}); see `instseg list-models`")
    return arch, size


def _train_config(arch: str, size: str, seed: int, p: Protocol, out: Path, name: str):
    from instseg.config import AugmentConfig, ScheduleConfig, TrainConfig, apply_overrides

    cfg = TrainConfig(data=Path(p.data), architecture=arch, model=size, epochs=p.epochs, time=p.time,
                      imgsz=p.imgsz, batch=p.batch, device=p.device, seed=seed, workers=p.workers, project=out,
                      name=name, exist_ok=True, quiet=True, val_conf=0.001, max_det=100,
                      schedule=ScheduleConfig(recipe=p.schedule), augment=AugmentConfig(recipe=p.augment))
    return apply_overrides(cfg, p.overrides) if p.overrides else cfg


_HELD_EQUAL = ("architecture", "model", "epochs", "imgsz", "seed", "batch", "val_conf", "max_det")


def _differences(old, new) -> list[str]:
    diffs = [f"{k} {getattr(old, k)} vs {getattr(new, k)}" for k in _HELD_EQUAL
             if getattr(new, k) is not None and getattr(old, k) != getattr(new, k)]
    if old.time != new.time:
        diffs.append(f"time {old.time} vs {new.time} h")
    if Path(old.data).resolve() != Path(new.data).resolve():
        diffs.append(f"data {old.data} vs {new.data}")
    if old.schedule.recipe != new.schedule.recipe or old.augment.recipe != new.augment.recipe:
        diffs.append(f"schedule/augment {old.schedule.recipe}/{old.augment.recipe} vs "
                     f"{new.schedule.recipe}/{new.augment.recipe}")
    else:  # the settings of --set (and anything else in these sections)
        from instseg.config import to_dict

        for section in ("schedule", "augment"):
            a, b = to_dict(getattr(old, section)), to_dict(getattr(new, section))
            diffs += [f"{section}.{k} {a.get(k)} vs {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return diffs


def train_entry(arch: str, size: str, seed: int, p: Protocol, out: Path, name: str) -> Entry:
    """Train one entry (or find it finished, or continue it); never raises: a failure is the entry's error."""
    from instseg import api
    from instseg.config import TrainConfig, load_yaml

    cfg = _train_config(arch, size, seed, p, out, name)
    root = out / name
    try:
        if (root / "config.yaml").is_file():
            old = load_yaml(TrainConfig, root / "config.yaml")
            diffs = _differences(old, cfg)
            if diffs:
                raise CompareError(f"{root}: exists with another protocol ({'; '.join(diffs)}); use another --out")
            if (root / "metrics.json").is_file():
                entry = read_run(root)
                entry.name, entry.resumed = name, True
                return entry
            if (root / "weights" / "last.pt").is_file():
                log.info("%s: continuing from %s", name, root / "weights" / "last.pt")
                try:
                    api.train(TrainConfig(resume=root / "weights" / "last.pt"))
                except Exception:  # an unusable last.pt (killed while writing): start the entry again
                    log.warning("%s: cannot resume, training again", name, exc_info=True)
                    api.train(cfg)
                entry = read_run(root)
                entry.name = name
                return entry
        api.train(cfg)
        entry = read_run(root)
        entry.name = name
        return entry
    except Exception as e:  # one failed entry must not stop the others: the table says why
        log.debug("entry %s failed", name, exc_info=True)
        msg = str(e).splitlines()[0] if str(e) else ""
        return Entry(name=name, architecture=arch, size=size, seed=seed, root=root if root.exists() else None,
                     error=f"{type(e).__name__}: {msg}"[:300], cfg=cfg)


def train_entries(specs: list[str], p: Protocol, out: Path, progress=print, *, ray_address: str | None = None,
                  gpus_per_run: float | None = None, cpus_per_run: float | None = None) -> list[Entry]:
    """Every ``-a`` spec (checked first, so a typo trains nothing) for every seed: one after another here,
    or with ``ray_address`` as Ray tasks on that cluster (:mod:`instseg.compare.ray_runner`)."""
    parsed = [parse_spec(s) for s in specs]
    if len(set(parsed)) != len(parsed):
        raise CompareError(f"-a lists an entry twice: {specs}")
    for arch, size in parsed:  # a bad --set fails here, before anything trains
        _train_config(arch, size, p.seeds[0], p, out, "check")
    jobs = [(arch, size, seed, f"{arch}-{size}" + (f"-s{seed}" if len(p.seeds) > 1 else ""))
            for arch, size in parsed for seed in p.seeds]
    if ray_address:
        from instseg.compare.ray_runner import train_entries_ray

        return train_entries_ray(jobs, p, out, ray_address, gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run,
                                 progress=progress)
    entries = []
    for arch, size, seed, name in jobs:
        budget = f"{p.time:g} h" if p.time else f"{p.epochs} epochs"
        progress(f"[compare] {name}: training ({budget}, imgsz {p.imgsz}) in {out / name}")
        entry = train_entry(arch, size, seed, p, out, name)
        progress(f"[compare] {name}: " + ("done" if entry.ok and not entry.resumed else
                                          "finished earlier, not retrained" if entry.ok else entry.error))
        entries.append(entry)
    return entries


def collect_entries(run_dirs: list[Path]) -> list[Entry]:
    entries = [read_run(Path(d)) for d in run_dirs]
    seen: dict[str, int] = {}
    for e in entries:  # unique names: solov2-nano, solov2-nano-2, ...
        seen[e.name] = seen.get(e.name, 0) + 1
        if seen[e.name] > 1:
            e.name = f"{e.name}-{seen[e.name]}"
    return entries


def compare(entries: list[Entry], out: Path, *, protocol: dict, device: str = "", samples: int = 1000,
            seed: int = 0, level: float = 0.95, latency_iters: int = 20, latency_warmup: int = 3,
            progress=print) -> dict:
    """Score, time and bootstrap ``entries``; write ``out/compare.json`` and ``out/compare.csv``; return the
    document (schema ``instseg.compare/1``)."""
    from instseg.compare import bootstrap as bs
    from instseg.compare.measure import count_gflops, count_params, measure_latency
    from instseg.compare.report import build_document, write_outputs
    from instseg.compare.score import score_entry

    out = Path(out)
    ok = [e for e in entries if e.ok]
    if not ok:
        raise CompareError("every entry failed: " + "; ".join(f"{e.name}: {e.error}" for e in entries))
    gt = check_same_ground_truth(ok, protocol.get("split", "val"))
    imgsz = protocol.get("imgsz") or ok[0].cfg.imgsz
    weights = bs.resample_weights(len(gt.gt["images"]), samples, seed)
    scores, extras = {}, {}
    for e in ok:
        progress(f"[compare] {e.name}: scoring on {len(gt.records)} val images, {samples} bootstrap resamples")
        try:
            scores[e.name] = score_entry(e, gt, weights, device, out / "scores", level)
        except Exception as ex:
            log.debug("scoring %s failed", e.name, exc_info=True)
            e.error = f"scoring failed: {type(ex).__name__}: {ex}"[:300]
            continue
        extra: dict = {}
        try:
            extra["params"] = count_params(e.weights) if e.weights else None
        except Exception as ex:
            extra["params"], extra["params_error"] = None, f"{type(ex).__name__}: {ex}"[:200]
        if e.weights is not None:
            try:
                extra["gflops"] = count_gflops(e.weights, imgsz, gt.records[0].path if gt.records else None)
            except Exception as ex:
                extra["gflops"], extra["gflops_error"] = None, f"{type(ex).__name__}: {ex}"[:200]
                log.debug("counting the FLOPs of %s failed", e.name, exc_info=True)
        if latency_iters > 0 and e.weights is not None:
            progress(f"[compare] {e.name}: timing {latency_iters} images one by one at batch 1")
            try:
                from instseg.backends import backend_for_weights
                from instseg.contract import PredictConfig

                pcfg = PredictConfig(imgsz=e.cfg.imgsz, conf=0.001, max_det=100, device=device, names=gt.names)
                extra["latency"] = measure_latency(backend_for_weights(e.weights, pcfg), e.weights,
                                                   [r.path for r in gt.records], pcfg, warmup=latency_warmup,
                                                   iters=latency_iters)
            except Exception as ex:
                extra["latency_error"] = f"{type(ex).__name__}: {ex}"[:200]
                log.debug("timing %s failed", e.name, exc_info=True)
        extras[e.name] = extra
    protocol = {**protocol, "gt_sha256": gt.sha256, "split": gt.split, "data": str(Path(gt.data).resolve()),
                "evaluator": "faster-coco-eval", "conf": 0.001, "max_det": 100,
                "latency": {"device": device or "auto", "batch": 1, "warmup": latency_warmup, "images": latency_iters,
                            "imgsz": protocol.get("imgsz"), "threads": _threads(),
                            "method": "Backend.predictor: weights loaded once, then each val image predicted and "
                                      "timed on its own (decode, letterbox, forward, post-processing to "
                                      "original-size RLE masks); median and p90 over the per-image times"},
                "gflops": {"imgsz": imgsz, "batch": 1, "counter": "torch.utils.flop_counter.FlopCounterMode",
                           "convention": "FLOPs / 1e9, 2 FLOPs per multiply-add (Ultralytics' get_flops: thop "
                                         "MACs x 2); convolutions, matmuls, attention only",
                           "input": "the first val image letterboxed to imgsz x imgsz, on the CPU",
                           "forward": "engine models: model.predict (conf 0.001, 100 detections); Ultralytics: "
                                      "its nn.Module forward (as get_flops; NMS and mask assembly not counted)"},
                "bootstrap": {"samples": samples, "seed": seed, "level": level, "over": "val images",
                              "weights": "bayesian (n * Dirichlet(1..1))", "interval": "percentile"}}
    doc = build_document(entries, scores, extras, gt.names, protocol, out)
    doc["created"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_outputs(doc, out)
    return doc


def _threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def format_exception(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()


__all__ = ["Protocol", "parse_spec", "train_entry", "train_entries", "collect_entries", "compare"]
