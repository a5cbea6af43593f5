"""``instseg export``: a trained model as one ONNX file that carries its own metadata.

* RTMDet-Ins, SOLOv2, Mask R-CNN (instseg checkpoints): ``torch_export.export_instseg``;
* YOLO11-seg / YOLO26-seg (Ultralytics checkpoints): Ultralytics' exporter (``yolo.export_yolo``).

Reading the file back (``instseg predict/eval --weights model.onnx``) is the ``onnx`` backend's job
(``instseg.backends.onnx``); its numpy post-process is ``instseg.backends.onnx_post``. Nothing heavy is
imported here.
"""

from __future__ import annotations

from pathlib import Path

from instseg.errors import WeightsError

DEFAULT_OPSET = 17
MIN_OPSET = 11  # NonMaxSuppression / RoiAlign / Resize with half-pixel coordinates


def export_model(weights: Path, out: Path | None = None, *, fmt: str = "onnx", imgsz: int | None = None,
                 dynamic: bool = False, half: bool = False, opset: int = DEFAULT_OPSET, simplify: bool = False,
                 device: str = "", max_det: int = 100) -> tuple[Path, dict]:
    """Export ``weights`` to ``out`` (default: beside it, ``.onnx``). Returns (path, metadata with a
    "parity" entry: max abs difference per output between onnxruntime and PyTorch on a test input).

    ``imgsz``: the square letterbox size of the graph (default: the training size); ``dynamic``: batch,
    height and width free; ``half``: FP16 (CUDA only); ``max_det``: detections the Mask R-CNN graph keeps
    (its post-processing is inside the graph)."""
    from instseg.config import ConfigError
    from instseg.export.onnx_file import require_onnx, require_onnxsim

    if fmt.lower() != "onnx":
        raise ConfigError(f"--format {fmt}: instseg exports onnx only")
    weights = Path(weights)
    if not weights.is_file():
        raise WeightsError(f"{weights}: file not found (pass the best.pt of a run folder)")
    if weights.suffix.lower() == ".onnx":
        raise WeightsError(f"{weights}: already an ONNX file; pass the .pt it was exported from")
    import torch.onnx

    max_opset = int(getattr(torch.onnx, "_constants").ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
    if not MIN_OPSET <= opset <= max_opset:
        raise ConfigError(f"--opset {opset}: valid {MIN_OPSET}..{max_opset} (default {DEFAULT_OPSET})")
    if imgsz is not None and imgsz <= 0:
        raise ConfigError(f"--imgsz {imgsz} must be positive")
    require_onnx()
    if simplify:
        require_onnxsim()
    out = Path(out) if out is not None else weights.with_suffix(".onnx")
    kw = dict(imgsz=imgsz, dynamic=dynamic, half=half, opset=opset, simplify=simplify, device=device)

    from instseg.backends.ultralytics import is_ultralytics_checkpoint

    if is_ultralytics_checkpoint(weights):
        from instseg.backends.ultralytics import available
        from instseg.export.yolo import export_yolo

        why = available()
        if why:
            from instseg.errors import BackendUnavailable

            raise BackendUnavailable(f"{weights} is an Ultralytics checkpoint; {why}")
        return out, export_yolo(weights, out, **kw)
    from instseg.export.torch_export import export_instseg

    return out, export_instseg(weights, out, max_det=max_det, **kw)


__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_model"]
