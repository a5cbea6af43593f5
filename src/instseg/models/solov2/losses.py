"""SOLOv2 targets and losses: grid-cell assignment, Dice loss for masks, focal loss for categories.

Coordinates: boxes are xyxy in input pixels; target masks are at the mask feature stride s (4), where the
pixel index c covers input pixels [s*c, s*c + s), so its centre in input pixel-index units is
``s * (c + 0.5) - 0.5`` (this equals the centre of mass MMDetection computes on the full-resolution mask
when that mask is the stride-s mask upsampled by pixel repetition).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from instseg.models.solov2.config import Solov2Config


@dataclass
class LevelTargets:
    """One image, one pyramid level: the category map and the positive cells with their mask indices."""

    labels: torch.Tensor  # int64 [S, S]; num_classes marks background
    pos_index: list[int]  # flattened cell index per positive sample, in assignment order (may repeat)
    pos_gt: list[int]  # which ground-truth instance each positive sample takes its mask from
    num_unique_pos: int  # distinct positive cells


def mask_centre(mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre of mass (y, x) of a stride-``stride`` binary mask [h, w], in input pixel-index units."""
    m = mask.float()
    total = m.sum().clamp(min=1e-6)
    cy = (m.sum(1) * torch.arange(m.shape[0], dtype=torch.float32, device=m.device)).sum() / total
    cx = (m.sum(0) * torch.arange(m.shape[1], dtype=torch.float32, device=m.device)).sum() / total
    return stride * (cy + 0.5) - 0.5, stride * (cx + 0.5) - 0.5


def _cell(v: torch.Tensor, size: int, num_grid: int) -> int:
    """Grid cell of coordinate ``v`` (input pixels) on an axis of ``size`` pixels cut into ``num_grid``."""
    return int(torch.div(v / size, 1.0 / num_grid, rounding_mode="trunc"))


def assign_image(
    labels: torch.Tensor, boxes: torch.Tensor, masks: torch.Tensor, feat_hw: tuple[int, int],
    cfg: Solov2Config, num_classes: int, stride: int = 4,
) -> list[LevelTargets]:
    """Assign the ground truth of one image to grid cells of every level (SOLO's centre sampling).

    An instance belongs to each level whose scale range holds sqrt(box area); its positive cells are those
    in the centre region (``pos_scale`` of the half box size around the mask's centre of mass), at most
    3x3 cells around the centre cell. Instances with an empty mask are skipped.
    """
    up_h, up_w = feat_hw[0] * stride, feat_hw[1] * stride
    scale = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    valid = masks.flatten(1).sum(1) > 0 if len(masks) else torch.zeros(0, dtype=torch.bool)
    centres = [mask_centre(m, stride) if v else None for m, v in zip(masks, valid)]
    out = []
    for (lo, hi), g in zip(cfg.scale_ranges, cfg.num_grids):
        lab = torch.full((g, g), num_classes, dtype=torch.int64, device=labels.device)
        pos_index: list[int] = []
        pos_gt: list[int] = []
        for k in ((scale >= lo) & (scale <= hi)).nonzero().flatten().tolist():
            if centres[k] is None:
                continue
            cy, cx = centres[k]
            half_h = 0.5 * (boxes[k, 3] - boxes[k, 1]) * cfg.pos_scale
            half_w = 0.5 * (boxes[k, 2] - boxes[k, 0]) * cfg.pos_scale
            ch, cw = _cell(cy, up_h, g), _cell(cx, up_w, g)
            top = max(max(0, _cell(cy - half_h, up_h, g)), ch - 1)
            down = min(min(g - 1, _cell(cy + half_h, up_h, g)), ch + 1)
            left = max(cw - 1, max(0, _cell(cx - half_w, up_w, g)))
            right = min(min(g - 1, _cell(cx + half_w, up_w, g)), cw + 1)
            lab[top : down + 1, left : right + 1] = labels[k]
            for i in range(top, down + 1):
                for j in range(left, right + 1):
                    pos_index.append(i * g + j)
                    pos_gt.append(k)
        out.append(LevelTargets(lab, pos_index, pos_gt, len(set(pos_index))))
    return out


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Per-mask V-Net Dice loss ``1 - 2*sum(p*t) / (sum(p^2) + sum(t^2) + 2*eps)`` with p = sigmoid(logits).

    logits, targets: [N, H, W]; returns [N].
    """
    p = logits.sigmoid().flatten(1)
    t = targets.flatten(1).float()
    return 1 - 2 * (p * t).sum(1) / ((p * p).sum(1) + eps + (t * t).sum(1) + eps)


def solov2_loss(
    kernels: list[torch.Tensor], logits: list[torch.Tensor], mask_feats: torch.Tensor,
    targets: list[dict], cfg: Solov2Config, num_classes: int, *, stride: int = 4,
    mask_weight: float = 3.0, cls_weight: float = 1.0, alpha: float = 0.25, gamma: float = 2.0,
) -> dict[str, torch.Tensor]:
    """``loss_mask`` (Dice x 3, summed over positives / number of positive cells) and ``loss_cls`` (sigmoid
    focal loss summed / (positive cells + 1)), as MMDetection's ``SOLOV2Head.loss_by_feat``.

    targets[i]: "labels" int64 [N], "boxes" float32 [N, 4] xyxy input pixels, "masks" uint8 [N, h, w] at
    ``stride``; masks smaller than the mask feature map are zero-padded at the bottom/right.
    """
    from torchvision.ops import sigmoid_focal_loss

    fh, fw = mask_feats.shape[-2:]
    all_targets = []
    for t in targets:
        m = t["masks"]
        if m.shape[-2] != fh or m.shape[-1] != fw:
            m = F.pad(m[..., :fh, :fw], (0, fw - min(m.shape[-1], fw), 0, fh - min(m.shape[-2], fh)))
        all_targets.append((assign_image(t["labels"], t["boxes"].float(), m, (fh, fw), cfg, num_classes, stride), m))

    num_pos = sum(lv.num_unique_pos for per_img, _ in all_targets for lv in per_img)
    mask_losses = []
    for lvl, kern in enumerate(kernels):
        for img, (per_img, m) in enumerate(all_targets):
            lt = per_img[lvl]
            if not lt.pos_index:
                continue
            k = kern[img].flatten(1)[:, lt.pos_index]  # [E, P]
            pred = F.conv2d(mask_feats[img : img + 1], k.T[:, :, None, None])[0]  # 1x1 dynamic convs
            mask_losses.append(dice_loss(pred, m[lt.pos_gt]))
    if num_pos > 0:
        loss_mask = mask_weight * torch.cat(mask_losses).sum() / num_pos
    else:
        loss_mask = mask_feats.sum() * 0

    flat_logits = torch.cat([lg.permute(0, 2, 3, 1).reshape(-1, num_classes) for lg in logits])
    flat_labels = torch.cat([per_img[lvl].labels.flatten() for lvl in range(len(logits)) for per_img, _ in all_targets])
    onehot = F.one_hot(flat_labels, num_classes + 1)[:, :num_classes].to(flat_logits.dtype)
    loss_cls = cls_weight * sigmoid_focal_loss(flat_logits, onehot, alpha=alpha, gamma=gamma, reduction="sum")
    return {"loss_mask": loss_mask, "loss_cls": loss_cls / (num_pos + 1)}
