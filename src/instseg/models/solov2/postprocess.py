"""SOLOv2 inference: point NMS on the category grids, dynamic-kernel mask decoding, maskness, Matrix NMS.

All masks are returned as probabilities at network input resolution (``[K, H, W]`` float, input pixels);
boxes are the xyxy extents (input pixels, exclusive right/bottom edges) of the masks thresholded at
``mask_thr``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from instseg.models.solov2.config import Solov2Config, Solov2TestConfig
from instseg.models.solov2.matrix_nms import matrix_nms


def point_nms(scores: torch.Tensor) -> torch.Tensor:
    """Zero every grid score [B, C, S, S] below its top, left or top-left neighbour (a 2x2 max pool)."""
    local_max = F.max_pool2d(scores, 2, stride=1, padding=1)[:, :, :-1, :-1]
    return scores * (local_max == scores)


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """xyxy boxes [K, 4] (pixels; x2/y2 one past the last foreground pixel) of bool masks [K, H, W];
    an empty mask gets a zero box."""
    if len(masks) == 0:
        return masks.new_zeros((0, 4), dtype=torch.float32)
    rows, cols = masks.any(2), masks.any(1)
    h, w = masks.shape[-2:]
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, ar_h, h).min(1).values
    y2 = torch.where(rows, ar_h, -1).max(1).values + 1
    x1 = torch.where(cols, ar_w, w).min(1).values
    x2 = torch.where(cols, ar_w, -1).max(1).values + 1
    boxes = torch.stack([x1, y1, x2, y2], 1).float()
    return torch.where(rows.any(1)[:, None], boxes, torch.zeros_like(boxes))


def decode_image(
    kernels: list[torch.Tensor], probs: list[torch.Tensor], mask_feats: torch.Tensor, input_hw: tuple[int, int],
    cfg: Solov2Config, test: Solov2TestConfig, *, stride: int = 4, score_thr: float | None = None,
    max_det: int | None = None,
) -> dict[str, torch.Tensor]:
    """One image: kernels [E, S, S] and point-NMSed category probabilities [C, S, S] per level, mask
    features [E, h, w]; ``input_hw`` is the unpadded input size. ``score_thr`` (if above ``filter_thr``) and
    ``max_det`` tighten the final filter and count of MMDetection's defaults in ``test``."""
    num_classes = probs[0].shape[0]
    e = mask_feats.shape[0]
    cls = torch.cat([p.permute(1, 2, 0).reshape(-1, num_classes) for p in probs])
    kern = torch.cat([k.permute(1, 2, 0).reshape(-1, e) for k in kernels])
    level_stride = torch.cat([
        torch.full((g * g,), float(s), device=cls.device) for g, s in zip(cfg.num_grids, cfg.strides)
    ])
    h, w = input_hw
    empty = {"boxes": cls.new_zeros((0, 4)), "scores": cls.new_zeros(0),
             "labels": torch.zeros(0, dtype=torch.int64, device=cls.device), "masks": cls.new_zeros((0, h, w))}
    hit = cls > test.score_thr
    scores = cls[hit]
    if len(scores) == 0:
        return empty
    cell, labels = hit.nonzero().unbind(1)
    mask_prob = F.conv2d(mask_feats[None], kern[cell][:, :, None, None])[0].sigmoid()  # 1x1 dynamic convs
    binary = mask_prob > test.mask_thr
    area = binary.sum((1, 2)).float()
    keep = area > level_stride[cell]
    if not keep.any():
        return empty
    mask_prob, binary, area, scores, labels = mask_prob[keep], binary[keep], area[keep], scores[keep], labels[keep]
    scores = scores * ((mask_prob * binary).sum((1, 2)) / area)  # maskness (rounded as MMDetection does)
    scores, labels, order = matrix_nms(
        binary, labels, scores, mask_area=area, nms_pre=test.nms_pre,
        max_num=test.max_per_img if max_det is None else max_det, kernel=test.kernel, sigma=test.sigma,
        filter_thr=max(test.filter_thr, score_thr or 0.0),
    )
    if len(order) == 0:
        return empty
    fh, fw = mask_feats.shape[-2:]
    up = F.interpolate(mask_prob[order][None], size=(fh * stride, fw * stride), mode="bilinear", align_corners=False)
    masks = up[0, :, :h, :w]
    return {"boxes": masks_to_boxes(masks > test.mask_thr), "scores": scores, "labels": labels.long(), "masks": masks}
