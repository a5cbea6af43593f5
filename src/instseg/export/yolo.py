"""YOLO-seg export through Ultralytics' own exporter (``YOLO(best.pt).export(format="onnx")``), then
instseg's metadata beside Ultralytics' own (which its AutoBackend reads back: stride, names, imgsz, task).
The checkpoint is copied into a temporary folder first, so Ultralytics writes nothing beside it and the
destination is written once, atomically."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from instseg.errors import WeightsError


def export_yolo(weights: Path, out: Path, *, imgsz: int | None, dynamic: bool, half: bool, opset: int,
                simplify: bool, device: str) -> dict:
    """Export an Ultralytics YOLO-seg ``.pt`` to ``out``; returns the instseg metadata written."""
    from instseg import __version__
    from instseg.backends.ultralytics import configure_offline, describe_weights, load_yolo
    from instseg.export.onnx_file import finalize

    if half and not (device and device != "cpu" and _cuda()):
        from instseg.config import ConfigError

        raise ConfigError("--half exports FP16, which needs a CUDA device (Ultralytics would silently export "
                          "FP32 on CPU); drop --half, or pass --device 0 on a machine with a GPU")
    configure_offline(quiet=True)
    info = describe_weights(weights)
    if info["architecture"] is None:
        raise WeightsError(f"{weights}: an Ultralytics model but not YOLO11-seg / YOLO26-seg; instseg exports "
                           "those two families")
    imgsz = int(imgsz or info["imgsz"] or 640)
    if imgsz % 32:
        from instseg.config import ConfigError

        raise ConfigError(f"--imgsz {imgsz} must be a multiple of 32; try --imgsz {max(32, 32 * round(imgsz / 32))}")
    with tempfile.TemporaryDirectory(prefix="instseg-export-") as tmp:
        local = Path(tmp) / Path(weights).name
        shutil.copyfile(weights, local)
        try:
            kw = {"half": True} if half else {}  # Ultralytics warns that 'half' is deprecated whenever it is passed
            produced = load_yolo(local).export(format="onnx", imgsz=imgsz, dynamic=dynamic, opset=opset,
                                               simplify=False, device=device or "cpu", verbose=False, **kw)
        except Exception as e:  # Ultralytics raises plain exceptions for every failure
            raise WeightsError(f"{weights}: Ultralytics' ONNX export failed: {type(e).__name__}: {e}") from e
        meta = {"kind": "ultralytics", "architecture": info["architecture"], "model": info["size"],
                "names": list(info["names"]), "imgsz": imgsz, "dynamic": dynamic, "batch": 1, "half": half,
                "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "channel_order": "RGB",
                "input": "images: float RGB [B,3,H,W] in [0,1], letterboxed by Ultralytics' own preprocessing",
                "outputs": ["output0", "output1"], "postprocess": {"by": "ultralytics AutoBackend (NMS, mask protos)"},
                "mask_stride": 4, "source": Path(weights).name, "version": __version__, "opset": opset}
        finalize(Path(produced), out, meta, simplify=simplify)
    meta["parity"] = {}
    return meta


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


__all__ = ["export_yolo"]
