"""RTMDet-Ins inference post-processing of one image (MMDetection's ``_predict_by_feat_single`` and
``_bbox_mask_post_process`` with rescale=False): per level, sigmoid scores above ``score_thr``, the best
``nms_pre`` (prior, class) pairs; boxes decoded and clipped to the input; zero-size boxes dropped; class-wise
NMS (torchvision.ops.batched_nms); the ``max_det`` best; masks from the dynamic convs, upsampled
bilinearly by 8 to the input and thresholded."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from instseg.models.rtmdet_ins.head import STRIDES, distance_to_boxes, dynamic_mask_logits, grid_priors


def postprocess_image(
    cls_scores: list[torch.Tensor],
    bbox_dists: list[torch.Tensor],
    kernels: list[torch.Tensor],
    mask_feat: torch.Tensor,
    sizes: list[tuple[int, int]],
    input_hw: tuple[int, int],
    *,
    score_thr: float,
    nms_pre: int,
    iou_thr: float,
    max_det: int,
    mask_thr: float,
) -> dict:
    """Detections of one image from its per-level maps (cls [C,h,w], dist [4,h,w], kernels [169,h,w]) and
    prototypes [8, H/8, W/8]: dict boxes [K,4] xyxy input px, scores [K], labels [K] int64, masks bool
    [K,H,W]."""
    from torchvision.ops import batched_nms

    h, w = input_hw
    level_priors = grid_priors(sizes, STRIDES, device=mask_feat.device, dtype=mask_feat.dtype).split(
        [a * b for a, b in sizes]
    )
    all_scores, all_labels, all_dists, all_priors, all_kernels = [], [], [], [], []
    for cls, dist, ker, pri in zip(cls_scores, bbox_dists, kernels, level_priors):
        c = cls.shape[0]
        scores = cls.permute(1, 2, 0).reshape(-1, c).sigmoid()
        keep = scores > score_thr
        vals = scores[keep]
        idx = keep.nonzero()
        vals, order = vals.sort(descending=True)
        vals, idx = vals[:nms_pre], idx[order[:nms_pre]]
        rows, labels = idx[:, 0], idx[:, 1]
        all_scores.append(vals)
        all_labels.append(labels)
        all_dists.append(dist.reshape(4, -1)[:, rows].T)  # gather the kept priors, no copy of the whole map
        all_kernels.append(ker.reshape(ker.shape[0], -1)[:, rows].T)
        all_priors.append(pri[rows])
    scores, labels = torch.cat(all_scores), torch.cat(all_labels)
    priors, kernels_sel = torch.cat(all_priors), torch.cat(all_kernels)
    boxes = distance_to_boxes(priors, torch.cat(all_dists), (h, w))
    ok = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
    boxes, scores, labels, priors, kernels_sel = (
        boxes[ok],
        scores[ok],
        labels[ok],
        priors[ok],
        kernels_sel[ok],
    )
    keep = batched_nms(boxes, scores, labels, iou_thr)[:max_det]
    boxes, scores, labels, priors, kernels_sel = (
        boxes[keep],
        scores[keep],
        labels[keep],
        priors[keep],
        kernels_sel[keep],
    )
    if len(keep):
        logits = dynamic_mask_logits(mask_feat, kernels_sel, priors)
        logits = F.interpolate(logits.unsqueeze(0), scale_factor=float(STRIDES[0]), mode="bilinear").squeeze(
            0
        )
        masks = logits[:, :h, :w] > _logit(mask_thr)  # sigmoid(x) > t  <=>  x > log(t / (1 - t))
        if masks.shape[-2:] != (h, w):
            masks = F.pad(masks, (0, w - masks.shape[-1], 0, h - masks.shape[-2]))
    else:
        masks = torch.zeros((0, h, w), dtype=torch.bool, device=mask_feat.device)
    return {"boxes": boxes, "scores": scores, "labels": labels.long(), "masks": masks}


def _logit(p: float) -> float:
    import math

    return math.log(p / (1.0 - p)) if 0.0 < p < 1.0 else (-math.inf if p <= 0.0 else math.inf)


__all__ = ["postprocess_image"]
