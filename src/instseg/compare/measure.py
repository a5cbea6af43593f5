"""Latency, parameter count and peak memory, measured the same way for every backend.

Latency goes through the backend contract only (``Backend.predict`` at batch 1: decoding, pre-processing,
the model, post-processing back to the original image and RLE encoding are all inside). A ``predict`` call
loads the weights first, so the per-image time is the difference of two calls that load the same weights
and run the same warm-up images: ``(T(warmup + N images) - T(warmup images)) / N``; the measurement is
repeated and the median of the repeats is kept (with the spread of the repeats as ``p90``).
Peak memory: the largest resident set size sampled every 5 ms during the measured calls on CPU, and
``torch.cuda.max_memory_allocated`` on CUDA.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


@dataclass
class Latency:
    device: str
    warmup: int
    iters: int
    repeats: int
    ms_median: float
    ms_p90: float
    peak_rss_mb: float | None
    peak_cuda_mb: float | None


class _RssSampler:
    def __init__(self, period: float = 0.005):
        import psutil

        self.proc, self.period, self.peak = psutil.Process(), period, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.period)

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def measure_latency(backend, weights: Path, images: Sequence[Path], cfg, warmup: int = 3, iters: int = 20,
                    repeats: int = 3) -> Latency:
    """ms per image of ``backend.predict(weights, ...)`` at batch 1 (``cfg``: a PredictConfig)."""
    import numpy as np

    from dataclasses import replace

    images = list(images)
    if not images:
        raise ValueError("no images to time")
    cfg = replace(cfg, batch=1)
    warm = [images[i % len(images)] for i in range(max(1, warmup))]
    timed = [images[i % len(images)] for i in range(max(1, iters))]
    cuda = _is_cuda(cfg.device)
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    per_image = []
    with _RssSampler() as rss:
        backend.predict(weights, warm, cfg)  # first call: imports, caches, cudnn autotune
        for _ in range(max(1, repeats)):
            t0 = _now(cuda)
            backend.predict(weights, warm, cfg)
            t1 = _now(cuda)
            backend.predict(weights, warm + timed, cfg)
            t2 = _now(cuda)
            per_image.append(max(0.0, (t2 - t1) - (t1 - t0)) / len(timed) * 1000.0)
    peak_cuda = None
    if cuda:
        import torch

        peak_cuda = torch.cuda.max_memory_allocated() / 2**20
    return Latency(device=cfg.device or ("cuda" if cuda else "cpu"), warmup=len(warm), iters=len(timed),
                   repeats=len(per_image), ms_median=float(np.median(per_image)),
                   ms_p90=float(np.quantile(per_image, 0.9)), peak_rss_mb=rss.peak / 2**20, peak_cuda_mb=peak_cuda)


def _is_cuda(device: str) -> bool:
    if device == "cpu":
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _now(cuda: bool) -> float:
    if cuda:
        import torch

        torch.cuda.synchronize()
    return time.perf_counter()


def count_params(weights: Path) -> int | None:
    """Parameters in ``weights``: the tensors of an instseg checkpoint's model (EMA not counted twice), or the
    Ultralytics model's parameters. None when the file is neither."""
    from instseg.backends import backend_for_weights

    backend = backend_for_weights(Path(weights))
    if backend.name == "ultralytics":
        from instseg.backends.ultralytics import load_yolo

        model = load_yolo(weights)
        return int(sum(p.numel() for p in model.model.parameters()))
    from instseg.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(Path(weights))
    state = ckpt.get("model") or {}
    return int(sum(v.numel() for k, v in state.items() if hasattr(v, "numel") and v.is_floating_point()
                   and not k.endswith(("running_mean", "running_var"))))


__all__ = ["Latency", "measure_latency", "count_params"]
