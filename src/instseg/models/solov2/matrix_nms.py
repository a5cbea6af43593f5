"""Matrix NMS (SOLOv2 paper, Wang et al. 2020, section 4.2): soft suppression of overlapping masks.

Each mask's score is multiplied by ``min_j f(iou_ij) / f(compensate_j)`` over the higher-scored masks j of
the same class, where ``compensate_j`` is the largest IoU mask j itself has with a higher-scored mask of its
class. f is ``exp(-sigma * iou^2)`` (gaussian) or ``1 - iou`` (linear). Semantics follow MMDetection's
``mask_matrix_nms`` (sort, optional nms_pre cut, decay, filter, re-sort, max_num cut).
"""

from __future__ import annotations

import torch


def matrix_nms(
    masks: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    *,
    mask_area: torch.Tensor | None = None,
    nms_pre: int = -1,
    max_num: int = -1,
    kernel: str = "gaussian",
    sigma: float = 2.0,
    filter_thr: float = -1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decay the scores of binary ``masks`` [N, H, W] (bool/0-1) with class ``labels`` [N].

    Returns (scores [K], labels [K], keep [K]): the decayed scores in descending order, their labels, and
    indices into the input. ``nms_pre``/``max_num`` <= 0 and ``filter_thr`` <= 0 disable those steps.
    """
    if kernel not in ("gaussian", "linear"):
        raise ValueError(f"unknown Matrix NMS kernel {kernel!r}; valid: gaussian, linear")
    empty = (scores.new_zeros(0), labels.new_zeros(0), labels.new_zeros(0, dtype=torch.long))
    if len(scores) == 0:
        return empty
    flat = masks.reshape(len(masks), -1).float()
    area = flat.sum(1) if mask_area is None else mask_area.float()
    scores, order = torch.sort(scores, descending=True)
    if 0 < nms_pre < len(order):
        order, scores = order[:nms_pre], scores[:nms_pre]
    flat, area, labels_s = flat[order], area[order], labels[order]

    inter = flat @ flat.T
    union = area[:, None] + area[None, :] - inter
    same = labels_s[:, None] == labels_s[None, :]
    # iou[i, j] for i < j (i scored higher), zero elsewhere and across classes
    iou = torch.triu(inter / union, diagonal=1) * torch.triu(same, diagonal=1)
    comp = iou.max(0).values[:, None]  # comp[i]: max IoU of mask i with any higher-scored mask
    if kernel == "gaussian":
        decay = (torch.exp(-sigma * iou**2) / torch.exp(-sigma * comp**2)).min(0).values
    else:
        decay = ((1 - iou) / (1 - comp)).min(0).values
    scores = scores * decay

    if filter_thr > 0:
        keep = scores >= filter_thr
        if not keep.any():
            return empty
        order, scores, labels_s = order[keep], scores[keep], labels_s[keep]
    scores, resort = torch.sort(scores, descending=True)
    order, labels_s = order[resort], labels_s[resort]
    if 0 < max_num < len(order):
        order, scores, labels_s = order[:max_num], scores[:max_num], labels_s[:max_num]
    return scores, labels_s, order
