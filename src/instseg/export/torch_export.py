"""Export of the architectures instseg's engine trains (RTMDet-Ins, SOLOv2, torchvision and Detectron2 Mask R-CNN):
``torch.onnx.export`` (the TorchScript-based exporter, which traces torchvision's detection models) of the
family graph (``graphs.py``), then the instseg metadata, optional onnxsim, and a parity run in onnxruntime
against the eager graph on the same input."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from instseg.backends.onnx_post import IN_GRAPH_NMS
from instseg.errors import WeightsError

MASKRCNN_SCORE_THR = 0.001  # what the Mask R-CNN graph keeps (evaluation's conf); predict filters above it


def _postprocess_params(arch: str, model, max_det: int) -> dict:
    if arch == "rtmdet-ins":
        return {"nms_pre": model.nms_pre, "iou_thr": model.nms_iou, "mask_thr": model.mask_thr, "strides": [8, 16, 32]}
    if arch == "solov2":
        t, c = model.test_cfg, model.cfg
        return {"nms_pre": t.nms_pre, "score_thr": t.score_thr, "mask_thr": t.mask_thr, "filter_thr": t.filter_thr,
                "kernel": t.kernel, "sigma": t.sigma, "num_grids": list(c.num_grids), "strides": list(c.strides),
                "mask_stride": model.mask_stride}
    if arch == "detectron2-maskrcnn":
        head = model.model.roi_heads.box_predictor
        return {"score_thr": MASKRCNN_SCORE_THR, "max_det": int(max_det), "iou_thr": float(head.test_nms_thresh),
                "mask_thr": 0.5}
    heads = model.model.roi_heads
    return {"score_thr": MASKRCNN_SCORE_THR, "max_det": int(max_det), "iou_thr": float(heads.nms_thresh)}


def _normalization(arch: str, model) -> tuple[list[float], list[float], str]:
    if arch == "rtmdet-ins":
        from instseg.models.rtmdet_ins.model import MEAN_BGR, STD_BGR

        return list(MEAN_BGR), list(STD_BGR), "BGR"
    if arch == "solov2":
        from instseg.models.solov2.model import MEAN_RGB, STD_RGB

        return list(MEAN_RGB), list(STD_RGB), "RGB"
    if arch == "detectron2-maskrcnn":  # Detectron2's PIXEL_MEAN/STD, in its BGR order (the graph flips RGB input)
        return [float(v) for v in model.cfg.MODEL.PIXEL_MEAN], [float(v) for v in model.cfg.MODEL.PIXEL_STD], "BGR"
    return [123.675, 116.28, 103.53], [58.395, 57.12, 57.375], "RGB"  # torchvision's ImageNet mean/std x 255


def _dynamic_axes(arch: str, outputs: list[str], dynamic: bool) -> dict:
    if arch in IN_GRAPH_NMS:  # the detection count is data-dependent even in a static graph
        axes = {name: {0: "detections"} for name in outputs}
        if dynamic:
            axes["images"] = {2: "height", 3: "width"}
            if "masks" in axes:  # torchvision pastes in the graph; Detectron2's 28x28 maps do not change
                axes["masks"] = {0: "detections", 2: "height", 3: "width"}
        return axes
    if not dynamic:
        return {}
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    for name in outputs:
        axes[name] = {0: "batch", 2: "feat_h", 3: "feat_w"} if name == "mask_feat" else {0: "batch", 1: "points"}
    return axes


def export_instseg(weights: Path, out: Path, *, imgsz: int | None, dynamic: bool, half: bool, opset: int,
                   simplify: bool, device: str, max_det: int) -> dict:
    """Export an instseg checkpoint to ``out``; returns the metadata written plus "parity" (max abs
    difference per output between onnxruntime and PyTorch on the example input)."""
    import torch

    from instseg import __version__
    from instseg.engine.distributed import DistInfo, select_device
    from instseg.engine.predict import load_trained_model
    from instseg.export.graphs import GRAPHS, OUTPUTS
    from instseg.export.onnx_file import finalize, parity
    from instseg.models.registry import get_architecture

    dev = select_device(device, DistInfo())
    if half and dev.type != "cuda":
        from instseg.config import ConfigError

        raise ConfigError(f"--half exports FP16, which needs a CUDA device (got {dev}); drop --half on CPU "
                          "or pass --device 0 on a machine with a GPU")
    from instseg.api import describe

    _, info = describe(weights)  # an instseg .pt, or a framework's own file (MMDetection .pth, torchvision)
    model, info, imgsz = load_trained_model(weights, dev, imgsz, info)
    arch, size = info.architecture, info.model
    if arch not in GRAPHS:
        raise WeightsError(f"{weights}: architecture {arch!r} has no ONNX graph (exportable: {', '.join(GRAPHS)})")
    _check_imgsz(imgsz)
    if arch == "maskrcnn":
        heads = model.model.roi_heads
        heads.score_thresh, heads.detections_per_img = MASKRCNN_SCORE_THR, int(max_det)
    elif arch == "detectron2-maskrcnn":
        head = model.model.roi_heads.box_predictor
        head.test_score_thresh, head.test_topk_per_image = MASKRCNN_SCORE_THR, int(max_det)
    if half:
        model = model.half()
    graph = GRAPHS[arch](model).eval()
    example = _example(imgsz).to(dev)
    outputs = OUTPUTS[arch]
    with tempfile.TemporaryDirectory(prefix="instseg-export-") as tmp:
        raw = Path(tmp) / "graph.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about data-dependent shapes are expected here
            torch.onnx.export(graph, (example,), str(raw), dynamo=False, opset_version=opset,
                              input_names=["images"], output_names=outputs,
                              dynamic_axes=_dynamic_axes(arch, outputs, dynamic) or None, do_constant_folding=True)
            expected = [t.float().cpu().numpy() for t in graph(example)]
        mean, std, order = _normalization(arch, model)
        backend = get_architecture(arch).backend
        meta = {"kind": backend if backend in ("torchvision", "detectron2") else "native",
                "architecture": arch, "model": size, "names": list(info.names), "imgsz": imgsz,
                "dynamic": dynamic, "batch": 1, "half": half, "mean": mean, "std": std, "channel_order": order,
                "input": "images: uint8 RGB [B,3,H,W], letterboxed to imgsz (normalization is inside the graph)",
                "outputs": outputs, "postprocess": _postprocess_params(arch, model, max_det),
                "mask_stride": get_architecture(arch).mask_stride, "source": Path(weights).name,
                "version": __version__, "opset": opset}
        finalize(raw, out, meta, simplify=simplify)
    meta["parity"] = parity(out, example.cpu().numpy(), expected, outputs, count_only=arch in IN_GRAPH_NMS)
    return meta


def _example(imgsz: int):
    """The trace and parity input: a synthetic demo image (shapes on texture), uint8 RGB [1,3,imgsz,imgsz]."""
    import numpy as np
    import torch

    from instseg.data.demo import make_demo_image

    img, _ = make_demo_image(np.random.default_rng(0), imgsz)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].contiguous()


def _check_imgsz(imgsz: int) -> None:
    if imgsz < 32 or imgsz % 32:
        from instseg.config import ConfigError

        raise ConfigError(f"--imgsz {imgsz} must be a positive multiple of 32 (the letterbox and the feature "
                          f"strides need it); try --imgsz {max(32, 32 * round(imgsz / 32))}")


__all__ = ["MASKRCNN_SCORE_THR", "export_instseg"]
