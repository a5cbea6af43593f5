"""Validation: predict a split with the model contract's ``predict``, map every prediction back to the
original image with the Dataset's ``ImageMeta``, encode masks as COCO RLE, and score with instseg's one
evaluator against the COCO ground truth made from the same records."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from instseg.data.types import ImageRecord
from instseg.structures import ImagePrediction


def make_loader(records: Sequence[ImageRecord], *, imgsz: int, mask_stride: int, batch: int, workers: int = 0):
    """A deterministic, letterboxing (no augmentation) DataLoader over ``records``."""
    import torch

    from instseg.augment.dataset import InstanceSegDataset, collate

    ds = InstanceSegDataset(list(records), imgsz=imgsz, mask_stride=mask_stride, augment=None, train=False)
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False, num_workers=workers,
                                       collate_fn=collate)


def to_image_prediction(out: dict, meta, mask_threshold: float = 0.5) -> ImagePrediction:
    """One model output (input pixels) as an ImagePrediction at the original size (RLE masks)."""
    import torch

    h0, w0 = (int(v) for v in meta.orig_size)
    boxes = meta.boxes_to_original(out["boxes"].detach().float().cpu())
    masks = out["masks"].detach().cpu()
    if masks.dtype.is_floating_point:
        masks = masks > mask_threshold
    rles = meta.masks_to_rles(masks) if len(masks) else []
    boxes = torch.as_tensor(boxes).reshape(-1, 4)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w0)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h0)
    return ImagePrediction(
        path=Path(meta.path) if meta.path is not None else None, height=h0, width=w0,
        boxes=boxes.numpy().astype(np.float32), scores=out["scores"].detach().float().cpu().numpy(),
        labels=out["labels"].detach().cpu().numpy().astype(np.int64), masks=rles, image_id=meta.image_id)


def predict_loader(model, loader, device, *, conf: float, max_det: int, mask_threshold: float = 0.5,
                   progress=None) -> list[ImagePrediction]:
    """Predictions for every image of ``loader``, at original size, in loader order."""
    import torch

    preds: list[ImagePrediction] = []
    was_training = model.training
    model.eval()
    it = loader if progress is None else progress(loader, len(loader), "val")
    fmt = memory_format_of(model)
    with torch.no_grad():
        for images, _targets, metas in it:
            outputs = model.predict(images.to(device, non_blocking=True).contiguous(memory_format=fmt), conf,
                                    max_det)
            preds += [to_image_prediction(o, m, mask_threshold) for o, m in zip(outputs, metas)]
    model.train(was_training)
    return preds


def memory_format_of(model):
    """channels_last when the model's first 4-D weight is stored so (the trainer's CPU default), else the
    default format: batches are fed in the format the convolutions expect."""
    import torch

    for p in model.parameters():
        if p.ndim == 4:
            return torch.channels_last if p.is_contiguous(memory_format=torch.channels_last) and not \
                p.is_contiguous() else torch.contiguous_format
    return torch.contiguous_format


def ground_truth(records: Sequence[ImageRecord], names: Sequence[str]) -> tuple[dict, list[ImageRecord]]:
    """The COCO ground truth of ``records`` and the records with ``image_id`` set to its image ids."""
    from dataclasses import replace

    from instseg.data.coco import records_to_coco

    gt = records_to_coco(list(records), list(names))
    with_ids = [replace(r, image_id=img["id"]) for r, img in zip(records, gt["images"])]
    return gt, with_ids


def validate(model, records: Sequence[ImageRecord], names: Sequence[str], *, imgsz: int, mask_stride: int,
             batch: int, device, conf: float = 0.001, max_det: int = 100, workers: int = 0, progress=None,
             gt: dict | None = None):
    """(metrics dict with flat keys, the Metrics object, the COCO results list) of ``model`` on ``records``."""
    from instseg.evaluation import evaluate, predictions_to_coco_results

    if gt is None:
        gt, records = ground_truth(records, names)
    loader = make_loader(records, imgsz=imgsz, mask_stride=mask_stride, batch=batch, workers=workers)
    preds = predict_loader(model, loader, device, conf=conf, max_det=max_det, progress=progress)
    results = predictions_to_coco_results(preds, [c["id"] for c in gt["categories"]])
    metrics = evaluate(gt, results)
    return metrics.to_dict(), metrics, results


__all__ = ["memory_format_of", "make_loader", "to_image_prediction", "predict_loader", "ground_truth", "validate"]
