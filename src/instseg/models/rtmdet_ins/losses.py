"""RTMDet-Ins' losses as MMDetection's QualityFocalLoss, GIoULoss and DiceLoss compute them (sums; the caller
divides by the average factors). Pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

FLOAT_EPS = torch.finfo(torch.float32).eps  # MMDetection adds it to every avg_factor


def quality_focal_loss(
    logits: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, beta: float = 2.0
) -> torch.Tensor:
    """Per-prior QFL [N]: logits [N, C]; labels [N] int64 (0..C-1 positive, anything else background);
    scores [N] soft targets (IoU) of the positives. Background: BCE(x, 0) * sigmoid(x)^beta on every class;
    a positive's own class: BCE(x, score) * |score - sigmoid(x)|^beta."""
    p = logits.sigmoid()
    loss = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none") * p.pow(
        beta
    )
    pos = ((labels >= 0) & (labels < logits.shape[1])).nonzero().squeeze(1)
    if pos.numel():
        cls = labels[pos]
        x = logits[pos, cls]
        t = scores[pos].to(x.dtype)
        loss = loss.clone()
        loss[pos, cls] = F.binary_cross_entropy_with_logits(x, t, reduction="none") * (
            t - p[pos, cls]
        ).abs().pow(beta)
    return loss.sum(dim=1)


def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """1 - GIoU [N] of paired xyxy boxes [N, 4]; union and enclosing area clamped to ``eps``."""
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    wh = (torch.min(pred[:, 2:], target[:, 2:]) - torch.max(pred[:, :2], target[:, :2])).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = (area_p + area_t - inter).clamp(min=eps)
    ious = inter / union
    ewh = (torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])).clamp(min=0)
    enclose = (ewh[:, 0] * ewh[:, 1]).clamp(min=eps)
    return 1 - (ious - (enclose - union) / enclose)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 5e-6) -> torch.Tensor:
    """Per-instance dice loss [N] of mask logits [N, h, w] against binary targets [N, h, w], MMDetection's
    DiceLoss with naive_dice=False (the RTMDet-Ins config's): 1 - 2 sum(p t) / (sum(p^2) + eps + sum(t^2) +
    eps)."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1).float()
    a = (p * t).sum(1)
    b = (p * p).sum(1) + eps
    c = (t * t).sum(1) + eps
    return 1 - 2 * a / (b + c)


__all__ = ["FLOAT_EPS", "dice_loss", "giou_loss", "quality_focal_loss"]
