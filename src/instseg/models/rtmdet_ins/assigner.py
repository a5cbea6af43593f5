"""DynamicSoftLabelAssigner (RTMDet): which prior learns which ground-truth instance.

Candidates are priors whose point lies strictly inside a ground-truth box. Cost of (prior, gt) =
soft-label classification cost (BCE against IoU-scaled one-hot, times |soft label - p|^2, summed over classes)
+ iou_weight * -log(IoU + 1e-7) + 10^(distance / stride - soft_center_radius), the distance from the
prior point to the instance's mask centre of mass. Each gt takes its k lowest-cost priors, k = max(1, int(sum of its 13
best IoUs)); a prior claimed twice keeps its cheapest gt. Pure tensor functions, no module state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-7


def box_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Pairwise IoU [N, M] of xyxy boxes a [N, 4], b [M, 4]; the union is clamped to ``eps``."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = (area_a[:, None] + area_b[None, :] - inter).clamp(min=eps)
    return inter / union


def mask_centers(masks: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Centre of mass (x, y) [N, 2] in input pixels of binary masks [N, h, w] given at ``stride``.

    Input pixel i has coordinate i (integer index, MMDetection's convention); mask pixel j at stride s covers
    input pixels s*j .. s*j + s - 1, so its centre is s*j + (s - 1) / 2. An empty mask gives (0, 0) + offset.
    """
    _, h, w = masks.shape
    m = masks.float()
    norm = m.sum(dim=(1, 2)).clamp(min=EPS)
    gy = torch.arange(h, device=masks.device, dtype=torch.float32)[:, None]
    gx = torch.arange(w, device=masks.device, dtype=torch.float32)
    cy = (m * gy).sum(dim=(1, 2)) / norm
    cx = (m * gx).sum(dim=(1, 2)) / norm
    return torch.stack([cx, cy], 1) * stride + (stride - 1) / 2.0


@dataclass
class Assignment:
    """Per prior: ``gt_inds`` [N] int64 (-1 background, else the gt index), ``labels`` [N] int64 (-1
    background),
    ``ious`` [N] float (IoU of the prior's predicted box with its gt; 0 for background)."""

    gt_inds: torch.Tensor
    labels: torch.Tensor
    ious: torch.Tensor

    @property
    def pos(self) -> torch.Tensor:
        return self.gt_inds >= 0


def assign(
    priors: torch.Tensor,
    pred_logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_centers: torch.Tensor | None = None,
    *,
    topk: int = 13,
    iou_weight: float = 3.0,
    soft_center_radius: float = 3.0,
) -> Assignment:
    """Assign priors [N, 4] (x, y, stride, stride) of one image, given their class logits [N, C] and decoded
    boxes [N, 4] xyxy (detached), to gt boxes [M, 4] xyxy with labels [M] (0-based) and centres [M, 2] (x, y;
    box centres when None). All coordinates in input pixels."""
    n, m = priors.shape[0], gt_boxes.shape[0]
    gt_inds = torch.full((n,), -1, dtype=torch.long, device=priors.device)
    labels = torch.full((n,), -1, dtype=torch.long, device=priors.device)
    ious = priors.new_zeros(n)
    if n == 0 or m == 0:
        return Assignment(gt_inds, labels, ious)
    pts = priors[:, :2]
    deltas = torch.cat([pts[:, None] - gt_boxes[None, :, :2], gt_boxes[None, :, 2:] - pts[:, None]], -1)
    valid = (deltas.min(dim=-1).values > 0).any(dim=1)
    if not valid.any():
        return Assignment(gt_inds, labels, ious)
    if gt_centers is None:
        gt_centers = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2.0
    vp = priors[valid]
    dist = (vp[:, None, :2] - gt_centers[None]).pow(2).sum(-1).sqrt() / vp[:, 2:3]
    center_cost = torch.pow(10, dist - soft_center_radius)
    pair_iou = box_iou(pred_boxes[valid], gt_boxes)
    iou_cost = -torch.log(pair_iou + EPS) * iou_weight
    logits = pred_logits[valid].unsqueeze(1).expand(-1, m, -1)
    soft = F.one_hot(gt_labels.long(), pred_logits.shape[-1]).float().unsqueeze(0) * pair_iou[..., None]
    scale = (soft - logits.sigmoid()).abs().pow(2.0)
    cls_cost = (F.binary_cross_entropy_with_logits(logits, soft, reduction="none") * scale).sum(-1)
    cost = cls_cost + iou_cost + center_cost
    matched_gt, matched_iou, fg = dynamic_k_matching(cost, pair_iou, topk)
    idx = valid.nonzero().squeeze(1)[fg]
    gt_inds[idx] = matched_gt
    labels[idx] = gt_labels[matched_gt].long()
    ious[idx] = matched_iou
    return Assignment(gt_inds, labels, ious)


def dynamic_k_matching(cost: torch.Tensor, pair_iou: torch.Tensor, topk: int):
    """Select priors per gt from cost [V, M] and IoU [V, M]: returns (gt index [F], IoU [F], foreground mask
    [V])."""
    v, m = cost.shape
    k_iou = torch.topk(pair_iou, min(topk, v), dim=0).values
    ks = k_iou.sum(0).int().clamp(min=1)
    # rank of every prior in each gt's column by ascending cost; take ranks < k (no per-gt loop, no host sync)
    order = cost.argsort(dim=0, stable=True)
    ranks = torch.empty_like(order).scatter_(
        0, order, torch.arange(v, device=cost.device)[:, None].expand(v, m)
    )
    matching = ranks < ks[None, :]
    multi = matching.sum(1) > 1
    if multi.any():
        best = cost[multi].argmin(dim=1)
        matching[multi] = False
        matching[multi.nonzero().squeeze(1), best] = True
    fg = matching.any(1)
    gt = matching[fg].float().argmax(1)
    iou = (matching.float() * pair_iou).sum(1)[fg]
    return gt, iou, fg


__all__ = ["Assignment", "assign", "box_iou", "dynamic_k_matching", "mask_centers"]
