"""``python -m instseg.export predict|eval``: predict or score with an exported ``.onnx`` through the
``onnx`` backend directly (what ``instseg predict/eval --weights x.onnx`` do once the engine picks backends
by ``owns()``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from instseg.backends.onnx import BACKEND
    from instseg.contract import PredictConfig
    from instseg.errors import InstsegError

    p = argparse.ArgumentParser(prog="python -m instseg.export")
    p.add_argument("command", choices=["predict", "eval"])
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--source", type=Path, help="predict: an image or a folder")
    p.add_argument("--out", type=Path, default=Path("predictions"))
    p.add_argument("--data", type=Path, help="eval: data.yaml")
    p.add_argument("--split", default="val")
    p.add_argument("--imgsz", type=int)
    p.add_argument("--conf", type=float)
    p.add_argument("--max-det", type=int, default=100)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    try:
        if a.command == "predict":
            from instseg.engine.predict import list_images, write_predictions

            cfg = PredictConfig(imgsz=a.imgsz, conf=0.25 if a.conf is None else a.conf, max_det=a.max_det,
                                device=a.device)
            preds = BACKEND.predict(a.weights, list_images(a.source), cfg)
            print(f"wrote {write_predictions(preds, a.out, BACKEND.describe(a.weights).names, overlays=False)}")
        else:
            from instseg.engine.setup import load_records
            from instseg.evaluation import Metrics

            cfg = PredictConfig(imgsz=a.imgsz, conf=0.001 if a.conf is None else a.conf, max_det=a.max_det,
                                device=a.device)
            print(Metrics.from_dict(BACKEND.evaluate(a.weights, load_records(a.data, a.split), cfg)).table())
    except InstsegError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
