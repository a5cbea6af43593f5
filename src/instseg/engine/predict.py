"""Prediction and evaluation with trained weights (``instseg predict`` / ``instseg eval --weights``) for the
architectures instseg trains itself: predictions at original image size, COCO results JSON, overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from instseg.contract import PredictConfig, WeightsInfo
from instseg.data.types import ImageRecord
from instseg.errors import DatasetError, WeightsError
from instseg.structures import ImagePrediction

IMAGE_SUFFIXES = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}


def list_images(source: Path) -> list[Path]:
    """An image file, or the images of a folder (sorted, not recursive)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            return images
        raise DatasetError(f"{source}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    raise DatasetError(f"{source}: no such file or folder (pass an image or a folder of images)")


def load_trained_model(weights: Path, device, imgsz: int | None = None, info: WeightsInfo | None = None):
    """(model in eval mode, WeightsInfo, imgsz) for ``weights``: an instseg checkpoint (EMA weights when
    present) or, with ``info`` from a backend's ``describe``, a framework's own file (MMDetection .pth,
    torchvision state dict) loaded through the family's upstream loader (``pretrained=path``)."""
    from instseg.engine.checkpoint import load_checkpoint, load_weights, model_state
    from instseg.models.build import build_model

    if info is None or info.kind == "instseg":
        ckpt = load_checkpoint(weights)
        info = WeightsInfo(backend=info.backend if info else "", architecture=ckpt["architecture"],
                           model=ckpt["size"], names=list(ckpt["names"]), imgsz=ckpt.get("imgsz"))
        imgsz = int(imgsz or info.imgsz or 640)
        model = build_model(info.architecture, info.model, len(info.names), imgsz=imgsz)
        load_weights(model, model_state(ckpt), weights)
        return model.to(device).eval(), info, imgsz
    if not info.architecture or not info.model or not info.names:
        raise WeightsError(f"{weights}: a {info.kind} file needs --architecture/-a, --model/-m and class names "
                           "(--data or --names)")
    imgsz = int(imgsz or info.imgsz or 640)
    model = build_model(info.architecture, info.model, len(info.names), imgsz=imgsz, pretrained=Path(weights))
    return model.to(device).eval(), info, imgsz


def for_inference(model, device):
    """``model`` in channels_last on the CPU (forward 0.81x the time for RTMDet-Ins tiny, 0.88x for SOLOv2
    nano at 320 px, batch 8, measured); batches follow it (``validate.memory_format_of``). A model whose
    ``inference_channels_last`` is False (Detectron2's, held to its DefaultPredictor's numbers) is left as is."""
    import torch

    if torch.device(device).type == "cpu" and getattr(model, "inference_channels_last", True):
        model.to(memory_format=torch.channels_last)
    return model


def _records(images: Sequence[Path]) -> list[ImageRecord]:
    from instseg.data.imagesize import read_image_size

    records = []
    for k, path in enumerate(images):
        w, h = read_image_size(path)
        records.append(ImageRecord(path=Path(path), width=int(w), height=int(h), image_id=k + 1))
    return records


def image_predictor(weights: Path, cfg: PredictConfig, info: WeightsInfo | None = None):
    """Load ``weights`` once; returns ``fn(images) -> [ImagePrediction]`` that predicts those image files
    (decode, letterbox, the model, masks back at each image's original size as RLE), ``cfg.batch`` at a time."""
    from instseg.engine.distributed import DistInfo, select_device
    from instseg.engine.validate import make_loader, predict_loader
    from instseg.models.registry import get_architecture

    device = select_device(cfg.device, DistInfo())
    model, info, imgsz = load_trained_model(weights, device, cfg.imgsz, info)
    model = for_inference(model, device)
    mask_stride = get_architecture(info.architecture).mask_stride

    def predict(images: Sequence[Path]) -> list[ImagePrediction]:
        loader = make_loader(_records(images), imgsz=imgsz, mask_stride=mask_stride, batch=cfg.batch)
        return predict_loader(model, loader, device, conf=cfg.conf, max_det=cfg.max_det,
                              mask_threshold=cfg.mask_threshold)

    return predict


def predict_images(weights: Path, images: Sequence[Path], cfg: PredictConfig,
                   info: WeightsInfo | None = None) -> list[ImagePrediction]:
    """Predictions of ``weights`` for ``images``, at each image's original size (RLE masks)."""
    return image_predictor(weights, cfg, info)(images)


def evaluate_records(weights: Path, records: Sequence[ImageRecord], cfg: PredictConfig | None = None,
                     out: Path | None = None, info: WeightsInfo | None = None) -> dict:
    """COCO metrics (``Metrics.to_dict()``) of ``weights`` on checked ``records``; results JSON to ``out``."""
    from instseg.engine.distributed import DistInfo, select_device
    from instseg.engine.validate import validate
    from instseg.evaluation import write_results_json
    from instseg.models.registry import get_architecture

    cfg = cfg or PredictConfig(conf=0.001)
    if not records:
        raise DatasetError("no usable images to evaluate (the split is empty)")
    device = select_device(cfg.device, DistInfo())
    model, info, imgsz = load_trained_model(weights, device, cfg.imgsz, info)
    model = for_inference(model, device)
    metrics, _, results = validate(model, records, info.names, imgsz=imgsz,
                                   mask_stride=get_architecture(info.architecture).mask_stride, batch=cfg.batch,
                                   device=device, conf=cfg.conf, max_det=cfg.max_det)
    if out is not None:
        write_results_json(out, results)
    return metrics


def draw_overlay(image: np.ndarray, pred: ImagePrediction, names: Sequence[str]) -> np.ndarray:
    """``image`` (HxWx3 uint8 RGB) with each instance's mask tinted, its box and 'name score'."""
    import cv2

    from instseg.data.masks import rle_to_mask

    out = image.copy()
    rng = np.random.default_rng(0)
    colors = rng.integers(60, 255, size=(max(len(names), 1), 3))
    for k in range(len(pred)):
        c = colors[int(pred.labels[k]) % len(colors)]
        if k < len(pred.masks):
            m = rle_to_mask(pred.masks[k]).astype(bool)
            out[m] = (0.5 * out[m] + 0.5 * c).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(float(v))) for v in pred.boxes[k])
        color = tuple(int(v) for v in c)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        label = names[int(pred.labels[k])] if int(pred.labels[k]) < len(names) else str(int(pred.labels[k]))
        cv2.putText(out, f"{label} {float(pred.scores[k]):.2f}", (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, color, 1, cv2.LINE_AA)
    return out


def write_predictions(preds: Sequence[ImagePrediction], out: Path, names: Sequence[str],
                      overlays: bool = True) -> Path:
    """``out/predictions.json`` (COCO results, RLE at original size), ``out/images.json`` (the COCO
    ``images`` entries the ids refer to) and ``out/overlays/<image>.jpg``. Returns the results path."""
    import cv2

    from instseg.data.coco import write_json_atomic
    from instseg.data.images import load_image
    from instseg.evaluation import predictions_to_coco_results, write_results_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for k, p in enumerate(preds):  # backends that do not number images: ids 1..n in source order
        if p.image_id is None:
            p.image_id = k + 1
    results = predictions_to_coco_results(list(preds), list(range(1, len(names) + 1)))
    path = write_results_json(out / "predictions.json", results)
    write_json_atomic(out / "images.json", {
        "images": [{"id": p.image_id, "file_name": str(p.path), "width": p.width, "height": p.height} for p in preds],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)]})
    if overlays:
        (out / "overlays").mkdir(exist_ok=True)
        for p in preds:
            img = draw_overlay(load_image(p.path), p, names)
            cv2.imwrite(str(out / "overlays" / f"{Path(p.path).stem}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


__all__ = ["list_images", "load_trained_model", "image_predictor", "predict_images", "evaluate_records", "draw_overlay",
           "write_predictions"]
