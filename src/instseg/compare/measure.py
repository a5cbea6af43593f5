"""Latency, parameter count, GFLOPs and peak memory, measured the same way for every backend.

Latency goes through the backend contract only: ``Backend.predictor(weights, cfg)`` loads the weights once
(not timed), then every image is predicted on its own at batch 1 and timed on its own (decoding,
pre-processing, the model, post-processing back to the original image and RLE encoding are all inside the
call; on CUDA the clock waits for the device). ``warmup`` images go first and are not timed; the median and
the 90th percentile are taken over the per-image times of the ``images`` timed images.
Peak memory: the largest resident set size sampled every 5 ms while the weights load and the images are
predicted on CPU, and ``torch.cuda.max_memory_allocated`` on CUDA.
GFLOPs: :func:`count_gflops` (``torch.utils.flop_counter``; 2 FLOPs per multiply-add, as Ultralytics).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence


@dataclass
class Latency:
    """Per-image latency of one entry: ``times_ms`` are the timed images in order, one time per image."""

    device: str
    warmup: int  # untimed images predicted first
    images: int  # timed images (= len(times_ms))
    distinct_images: int  # different files among them (fewer val images than ``images``: they repeat)
    threads: int  # torch's intra-op threads during the measurement
    ms_median: float
    ms_p90: float
    ms_mean: float
    peak_rss_mb: float | None
    peak_cuda_mb: float | None
    times_ms: list[float] = field(default_factory=list)
    batch: int = 1


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


def latency_stats(times_ms: Sequence[float]) -> dict:
    """median, p90 (numpy's linear interpolation) and mean of per-image times."""
    import numpy as np

    t = np.asarray(list(times_ms), dtype=np.float64)
    if t.size == 0:
        raise ValueError("no per-image times")
    return {"median": float(np.median(t)), "p90": float(np.quantile(t, 0.9)), "mean": float(t.mean())}


def measure_latency(backend, weights: Path, images: Sequence[Path], cfg, warmup: int = 3, iters: int = 20,
                    clock: Callable[[], float] | None = None) -> Latency:
    """ms per image of ``backend.predictor(weights, cfg)`` called on one image at a time (batch 1): ``warmup``
    untimed images, then ``iters`` images timed one by one (``images`` cycled when there are fewer).
    ``clock``: seconds (default ``time.perf_counter``, after a CUDA synchronize on CUDA)."""
    from dataclasses import replace

    import torch

    images = list(images)
    if not images:
        raise ValueError("no images to time")
    cfg = replace(cfg, batch=1)
    warm = [images[i % len(images)] for i in range(max(0, warmup))]
    timed = [images[i % len(images)] for i in range(max(1, iters))]
    cuda = _is_cuda(cfg.device)
    now = clock or (lambda: _now(cuda))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    with _RssSampler() as rss:
        predict = backend.predictor(weights, cfg)  # loads the weights: not timed
        for path in warm:  # imports, caches, allocator, cudnn autotune
            predict([path])
        for path in timed:
            t0 = now()
            predict([path])
            times.append((now() - t0) * 1000.0)
    peak_cuda = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    stats = latency_stats(times)
    return Latency(device=_device_name(cfg.device, cuda), warmup=len(warm), images=len(timed),
                   distinct_images=len(set(map(str, timed))), threads=torch.get_num_threads(),
                   ms_median=stats["median"], ms_p90=stats["p90"], ms_mean=stats["mean"],
                   peak_rss_mb=rss.peak / 2**20, peak_cuda_mb=peak_cuda, times_ms=times)


def _device_name(device: str, cuda: bool) -> str:
    if not cuda:
        return "cpu"
    import torch

    first = device.replace("cuda:", "").split(",")[0]
    index = int(first) if first.isdigit() else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


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


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the torch ops ``fn()`` runs (no grad), by ``torch.utils.flop_counter.FlopCounterMode``: the
    convolutions, matrix products and attention (2 FLOPs per multiply-add); element-wise ops, norms, pooling
    and ops without a formula (torchvision's roi_align, NMS) count 0."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def count_gflops(weights: Path, imgsz: int | None, image: Path | None = None, cfg=None) -> float:
    """GFLOPs (FLOPs / 1e9, 2 FLOPs per multiply-add: Ultralytics' ``get_flops`` reports thop's MACs x 2) of
    one inference forward of ``weights`` at batch 1, input ``[1, 3, imgsz, imgsz]``: ``image`` (else a black
    image) letterboxed as ``predict`` does, counted on the CPU (no GPU needed).

    * models of instseg's engine: ``model.predict(images, conf, max_det)`` (``cfg``: a PredictConfig, default
      conf 0.001 / 100 detections): backbone, neck, heads and the mask branches the model runs on its
      candidates (SOLOv2's and RTMDet-Ins' dynamic mask kernels, Mask R-CNN's box/mask heads), so the count
      depends a little on the image;
    * Ultralytics: its ``nn.Module`` forward (what ``get_flops`` counts, here with the same counter); NMS and
      the prototype-mask product that Ultralytics runs outside the module are not counted;
    * anything else (an ONNX graph) raises ValueError: there is no torch module to count."""
    import math

    import torch

    from instseg.backends import backend_for_weights
    from instseg.backends.engine_trained import EngineTrainedBackend
    from instseg.contract import PredictConfig

    cfg = cfg or PredictConfig(conf=0.001, max_det=100)
    weights = Path(weights)
    backend = backend_for_weights(weights, cfg)
    if backend.name == "ultralytics":
        from instseg.backends.ultralytics import configure_offline, load_yolo

        configure_offline()
        net = load_yolo(weights).model.float().eval()
        stride = max(int(net.stride.max()), 32) if hasattr(net, "stride") else 32
        size = int(math.ceil(int(imgsz or 640) / stride) * stride)  # Ultralytics' check_imgsz rounds up too
        x = _letterboxed(image, size, stride=1).float() / 255.0
        return count_flops(lambda: net(x)) / 1e9
    if isinstance(backend, EngineTrainedBackend):
        from instseg.engine.predict import load_trained_model
        from instseg.models.registry import get_architecture

        info = backend.describe(weights, cfg)
        model, info, size = load_trained_model(weights, "cpu", imgsz, None if info.kind == "instseg" else info)
        x = _letterboxed(image, size, stride=get_architecture(info.architecture).mask_stride)
        return count_flops(lambda: model.predict(x, cfg.conf, cfg.max_det)) / 1e9
    raise ValueError(f"{weights.name}: not a torch module ({backend.name} backend), its FLOPs cannot be counted; "
                     "count the .pt it was exported from")


def _letterboxed(image: Path | None, imgsz: int, stride: int):
    """uint8 [1, 3, imgsz, imgsz]: ``image`` through the engine's val letterbox, or zeros."""
    import torch

    if image is None:
        return torch.zeros((1, 3, imgsz, imgsz), dtype=torch.uint8)
    from instseg.engine.predict import _records
    from instseg.engine.validate import make_loader

    images, _targets, _metas = next(iter(make_loader(_records([Path(image)]), imgsz=imgsz, mask_stride=stride,
                                                     batch=1)))
    return images


__all__ = ["Latency", "latency_stats", "measure_latency", "count_params", "count_gflops", "count_flops"]
