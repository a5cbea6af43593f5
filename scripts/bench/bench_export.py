"""ms/image at batch 1: onnxruntime (CPU) vs PyTorch eager (CPU), for each exportable architecture's
smallest size at 320 and 640 px. Graph only (the network forward), then end to end through
``predict`` (letterbox, post-process, mapping to the original image and RLE) on one demo image.

    PYTHONPATH=src python scripts/bench/bench_export.py [--sizes 320 640] [--repeat 5] [--threads 2]

Random-init models (the cost does not depend on the weights, except for the number of detections: the
end-to-end row uses conf 0.25 on models whose class scores were raised so detections exist)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "export"))

SMALLEST = {"rtmdet-ins": "tiny", "solov2": "nano", "maskrcnn": "r50-fpn"}


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t)
    return 1000 * float(np.median(best))


def main() -> None:
    import torch

    from helpers import biased_model, write_checkpoint, write_images
    from instseg.backends.onnx import BACKEND, make_session
    from instseg.contract import PredictConfig
    from instseg.engine.predict import predict_images
    from instseg.export import export_model
    from instseg.export.graphs import GRAPHS

    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    p.add_argument("--archs", nargs="+", default=list(SMALLEST))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for arch in a.archs:
            for imgsz in a.sizes:
                model = biased_model(arch, SMALLEST[arch], 2, imgsz)
                pt = write_checkpoint(model, arch, SMALLEST[arch], ["a", "b"], imgsz, tmp / f"{arch}{imgsz}.pt")
                out, _ = export_model(pt, device="cpu")
                x = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (1, 3, imgsz, imgsz), np.uint8))
                graph = GRAPHS[arch](model).eval()
                sess = make_session(out, "cpu")
                with torch.no_grad():
                    t_pt = _time(lambda: graph(x), a.repeat)
                t_ort = _time(lambda: sess.run(None, {"images": x.numpy()}), a.repeat)
                img = write_images(tmp / f"img{imgsz}", 1, imgsz)
                cfg = PredictConfig(conf=0.25, device="cpu")
                e_pt = _time(lambda: predict_images(pt, img, cfg), max(1, a.repeat // 2))
                e_ort = _time(lambda: BACKEND.predict(out, img, cfg), max(1, a.repeat // 2))
                rows.append((arch, SMALLEST[arch], imgsz, t_pt, t_ort, e_pt, e_ort))
                print(f"{arch} {imgsz}: graph pt {t_pt:.0f} ms, ort {t_ort:.0f} ms; predict pt {e_pt:.0f}, "
                      f"ort {e_ort:.0f}", flush=True)
    print(f"\n| architecture | size | imgsz | PyTorch eager ms | onnxruntime ms | speed-up | predict() .pt ms | "
          f"predict() .onnx ms |\n|---|---|---|---|---|---|---|---|")
    for arch, size, imgsz, t_pt, t_ort, e_pt, e_ort in rows:
        print(f"| {arch} | {size} | {imgsz} | {t_pt:.0f} | {t_ort:.0f} | {t_pt / t_ort:.2f}x | {e_pt:.0f} | {e_ort:.0f} |")
    print(f"\n(batch 1, CPU; {a.threads} torch threads, onnxruntime with its default thread pool; median of "
          f"{a.repeat}; predict() includes loading the file, letterbox, post-process, RLE)")


if __name__ == "__main__":
    main()
