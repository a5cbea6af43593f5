"""RTMDetIns: CSPNeXt + CSPNeXtPAFPN + RTMDetInsSepBNHead behind instseg's model contract.

Module names ``backbone``, ``neck``, ``bbox_head`` as MMDetection's ``RTMDet`` detector, so its state dicts
load key for key. Images arrive as RGB uint8; MMDetection's pipeline reads BGR with cv2 and its RTMDet data
preprocessor (bgr_to_rgb=False) normalizes BGR with mean (103.53, 116.28, 123.675) and std (57.375, 57.12,
58.395): the model flips RGB to BGR, then normalizes, to see exactly the same numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from instseg.models.rtmdet_ins.assigner import assign, mask_centers
from instseg.models.rtmdet_ins.backbone import CSPNeXt
from instseg.models.rtmdet_ins.config import RTMDetInsSize
from instseg.models.rtmdet_ins.head import (
    STRIDES,
    RTMDetInsSepBNHead,
    distance_to_boxes,
    dynamic_mask_logits,
    grid_priors,
)
from instseg.models.rtmdet_ins.losses import FLOAT_EPS, dice_loss, giou_loss, quality_focal_loss
from instseg.models.rtmdet_ins.neck import CSPNeXtPAFPN
from instseg.models.rtmdet_ins.postprocess import postprocess_image

MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
MASK_LOSS_STRIDE = 4


class RTMDetIns(nn.Module):
    """RTMDet-Ins of one size for ``num_classes`` classes; see ``forward_train`` and ``predict``."""

    mask_stride = MASK_LOSS_STRIDE

    def __init__(
        self,
        size: RTMDetInsSize,
        num_classes: int,
        frozen_stages: int = -1,
        nms_pre: int = 1000,
        nms_iou: float = 0.6,
        mask_thr: float = 0.5,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.size_name = size.name
        self.num_classes = num_classes
        self.nms_pre, self.nms_iou, self.mask_thr = nms_pre, nms_iou, mask_thr
        self.backbone = CSPNeXt(size.deepen, size.widen, frozen_stages=frozen_stages)
        self.neck = CSPNeXtPAFPN(size.channels, size.feat_channels, size.neck_blocks)
        self.bbox_head = RTMDetInsSepBNHead(num_classes, size.feat_channels, size.feat_channels)
        self.register_buffer("pixel_mean", torch.tensor(MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(STD_BGR).view(1, 3, 1, 1), persistent=False)

    def reset_classifier(self) -> None:
        """Re-initialize the class layers (``bbox_head.rtm_cls``), e.g. after loading weights of other
        classes."""
        for conv in self.bbox_head.rtm_cls:
            self.bbox_head.reset_classifier_layer(conv)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [B,3,H,W] -> float BGR normalized as MMDetection's RTMDet data preprocessor."""
        x = images.flip(1).to(self.pixel_mean.dtype)
        return (x - self.pixel_mean) / self.pixel_std

    def forward_heads(self, images: torch.Tensor):
        """Raw head outputs (cls_scores, bbox_dists, kernels, mask_feat) of uint8 RGB images [B,3,H,W]."""
        return self.bbox_head(self.neck(self.backbone(self.normalize(images))))

    def forward(self, images: torch.Tensor):
        return self.forward_heads(images)

    # ---- training ----
    def forward_train(self, images: torch.Tensor, targets: list[dict]) -> dict[str, torch.Tensor]:
        """Losses {"loss_cls", "loss_bbox", "loss_mask"} of uint8 RGB images [B,3,H,W] and their targets:
        "labels" int64 [N] (0-based), "boxes" float [N,4] xyxy input pixels, "masks" uint8 [N, H/4, W/4]."""
        return self.loss(self.forward_heads(images), targets, tuple(images.shape[-2:]))

    def loss(self, outputs, targets: list[dict], input_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        # float32 from here (under autocast the head may give fp16, whose box areas overflow at 640 px)
        cls_scores = [c.float() for c in outputs[0]]
        bbox_dists = [d.float() for d in outputs[1]]
        kernels = [k.float() for k in outputs[2]]
        mask_feat = outputs[3].float()
        b = cls_scores[0].shape[0]
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        priors = grid_priors(sizes, STRIDES, device=cls_scores[0].device, dtype=cls_scores[0].dtype)
        flat_cls = torch.cat([c.permute(0, 2, 3, 1).reshape(b, -1, self.num_classes) for c in cls_scores], 1)
        flat_dist = torch.cat([d.permute(0, 2, 3, 1).reshape(b, -1, 4) for d in bbox_dists], 1)
        flat_kernels = torch.cat([k.permute(0, 2, 3, 1).reshape(b, -1, k.shape[1]) for k in kernels], 1)
        flat_boxes = distance_to_boxes(priors, flat_dist)
        labels = torch.full(flat_cls.shape[:2], self.num_classes, dtype=torch.long, device=flat_cls.device)
        metrics = flat_cls.new_zeros(flat_cls.shape[:2])
        mask_logits, mask_targets = [], []
        box_pred, box_target, box_weight = [], [], []
        for i, t in enumerate(targets):
            gt_boxes = t["boxes"].to(flat_boxes)
            gt_labels = t["labels"].to(flat_cls.device).long()
            gt_masks = t["masks"].to(flat_cls.device)
            stride = max(1, round(input_hw[0] / gt_masks.shape[-2])) if gt_masks.numel() else MASK_LOSS_STRIDE
            centers = mask_centers(gt_masks, stride) if len(gt_boxes) else None
            a = assign(priors, flat_cls[i].detach(), flat_boxes[i].detach(), gt_boxes, gt_labels, centers)
            pos = a.pos.nonzero().squeeze(1)
            if pos.numel() == 0:
                continue
            labels[i, pos] = a.labels[pos]
            metrics[i, pos] = a.ious[pos]
            box_pred.append(flat_boxes[i, pos])
            box_target.append(gt_boxes[a.gt_inds[pos]])
            box_weight.append(a.ious[pos])
            mask_logits.append(dynamic_mask_logits(mask_feat[i], flat_kernels[i, pos], priors[pos]))
            mask_targets.append(gt_masks[a.gt_inds[pos]])
        cls_avg = metrics.sum().clamp(min=1)
        loss_cls = (
            quality_focal_loss(
                flat_cls.reshape(-1, self.num_classes), labels.reshape(-1), metrics.reshape(-1)
            ).sum()
            / (1.0 + FLOAT_EPS)
            / cls_avg
        )
        if box_pred:
            w = torch.cat(box_weight)
            loss_bbox = (
                2.0
                * (giou_loss(torch.cat(box_pred), torch.cat(box_target)) * w).sum()
                / (1.0 + FLOAT_EPS)
                / w.sum().clamp(min=1)
            )
            logits = torch.cat(mask_logits)
            num_pos = logits.shape[0]
            scale = STRIDES[0] // MASK_LOSS_STRIDE
            logits = F.interpolate(
                logits.unsqueeze(0), scale_factor=scale, mode="bilinear", align_corners=False
            ).squeeze(0)
            gt = _fit(torch.cat(mask_targets), logits.shape[-2:])
            loss_mask = 2.0 * dice_loss(logits, gt).sum() / (num_pos + FLOAT_EPS)
        else:
            loss_bbox = flat_dist.sum() * 0
            loss_mask = mask_feat.sum() * 0
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox, "loss_mask": loss_mask}

    # ---- inference ----
    @torch.no_grad()
    def predict(self, images: torch.Tensor, score_thr: float = 0.05, max_det: int = 100) -> list[dict]:
        """Per image: "boxes" [K,4] xyxy input pixels, "scores" [K], "labels" [K] int64, "masks" [K,H,W]
        bool at the input resolution; score filter, top ``nms_pre`` per level, class-wise NMS, ``max_det``
        best."""
        cls_scores, bbox_dists, kernels, mask_feat = self.forward_heads(images)
        h, w = images.shape[-2:]
        sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        out = []
        for i in range(images.shape[0]):
            out.append(
                postprocess_image(
                    [c[i].float() for c in cls_scores],
                    [d[i].float() for d in bbox_dists],
                    [k[i].float() for k in kernels],
                    mask_feat[i].float(),
                    sizes,
                    (h, w),
                    score_thr=score_thr,
                    nms_pre=self.nms_pre,
                    iou_thr=self.nms_iou,
                    max_det=max_det,
                    mask_thr=self.mask_thr,
                )
            )
        return out


def _fit(masks: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Crop or zero-pad masks [N, h, w] on the bottom/right to ``hw``."""
    h, w = hw
    masks = masks[:, :h, :w]
    if masks.shape[-2:] != (h, w):
        masks = F.pad(masks, (0, w - masks.shape[-1], 0, h - masks.shape[-2]))
    return masks


__all__ = ["MEAN_BGR", "STD_BGR", "RTMDetIns"]
