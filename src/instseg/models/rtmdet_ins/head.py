"""RTMDetInsSepBNHead: RTMDet-Ins' head, with MMDetection's module names.

Per level (strides 8, 16, 32): ``cls_convs`` (2 ConvBNAct; the conv weights shared across levels, BN
per level; ``reg_convs`` is the *same* module list, as in MMDetection, whose state dict therefore repeats it under both
names), ``kernel_convs`` (per level, not shared); 1x1 predictors ``rtm_cls`` (class logits), ``rtm_reg``
(ltrb distances: relu(x) * stride, in input pixels) and ``rtm_kernel`` (169 dynamic-conv parameters).
``mask_head`` fuses the three levels at stride 8 into 8 prototype channels.

Priors are points ``(x, y, stride, stride)`` in input pixels at ``(col * stride, row * stride)`` (offset 0),
row-major per level, levels concatenated: MMDetection's MlvlPointGenerator(offset=0) with_stride=True.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from instseg.models.common.conv import ConvBNAct

STRIDES = (8, 16, 32)
NUM_PROTOTYPES = 8
DYCONV_CHANNELS = 8
# dynamic 1x1 convs: (2 coords + 8 prototypes) -> 8 -> 8 -> 1; weights of each layer, then biases of each
WEIGHT_NUMS = ((NUM_PROTOTYPES + 2) * DYCONV_CHANNELS, DYCONV_CHANNELS * DYCONV_CHANNELS, DYCONV_CHANNELS)
BIAS_NUMS = (DYCONV_CHANNELS, DYCONV_CHANNELS, 1)
NUM_GEN_PARAMS = sum(WEIGHT_NUMS) + sum(BIAS_NUMS)  # 169


def grid_priors(
    sizes: list[tuple[int, int]], strides: tuple[int, ...] = STRIDES, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Points of every level, float [N, 4] = (x, y, stride_x, stride_y) in input pixels, x = col * stride."""
    out = []
    for (h, w), s in zip(sizes, strides):
        ys = torch.arange(h, device=device, dtype=dtype) * s
        xs = torch.arange(w, device=device, dtype=dtype) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        st = torch.full_like(xx, float(s))
        out.append(torch.stack([xx.reshape(-1), yy.reshape(-1), st.reshape(-1), st.reshape(-1)], dim=1))
    return torch.cat(out)


def distance_to_boxes(
    points: torch.Tensor, dist: torch.Tensor, max_hw: tuple[int, int] | None = None
) -> torch.Tensor:
    """xyxy boxes from points [..., >=2] (x, y) and ltrb distances [..., 4], optionally clipped to (h, w)."""
    x1 = points[..., 0] - dist[..., 0]
    y1 = points[..., 1] - dist[..., 1]
    x2 = points[..., 0] + dist[..., 2]
    y2 = points[..., 1] + dist[..., 3]
    boxes = torch.stack([x1, y1, x2, y2], -1)
    if max_hw is not None:
        h, w = max_hw
        boxes = torch.stack(
            [
                boxes[..., 0].clamp(0, w),
                boxes[..., 1].clamp(0, h),
                boxes[..., 2].clamp(0, w),
                boxes[..., 3].clamp(0, h),
            ],
            -1,
        )
    return boxes


def dynamic_mask_logits(
    mask_feat: torch.Tensor, kernels: torch.Tensor, priors: torch.Tensor, feat_stride: int = STRIDES[0]
) -> torch.Tensor:
    """Mask logits [n, h, w] (at ``feat_stride``) of n instances from one image's prototypes [8, h, w], their
    169 dynamic parameters [n, 169] and their priors [n, 4] (x, y, stride, stride).

    Input of the 3-layer 1x1 dynamic conv: the offset (prior - pixel) / (8 * prior stride) as (dx, dy), then
    the prototypes; ReLU between layers; MMDetection's parameter layout (all weights, then all biases).
    """
    n = kernels.shape[0]
    _, h, w = mask_feat.shape
    if n == 0:
        return mask_feat.new_zeros((0, h, w))
    ws = torch.split(kernels, list(WEIGHT_NUMS) + list(BIAS_NUMS), dim=1)
    w0 = ws[0].reshape(n, DYCONV_CHANNELS, NUM_PROTOTYPES + 2)
    w1 = ws[1].reshape(n, DYCONV_CHANNELS, DYCONV_CHANNELS)
    w2 = ws[2].reshape(n, 1, DYCONV_CHANNELS)
    b0, b1, b2 = ws[3], ws[4], ws[5]
    ys = torch.arange(h, device=mask_feat.device, dtype=mask_feat.dtype) * feat_stride
    xs = torch.arange(w, device=mask_feat.device, dtype=mask_feat.dtype) * feat_stride
    scale = (priors[:, 2] * 8).reshape(n, 1, 1)
    rel_x = (priors[:, 0].reshape(n, 1, 1) - xs.reshape(1, 1, w)) / scale  # [n, 1, w]
    rel_y = (priors[:, 1].reshape(n, 1, 1) - ys.reshape(1, h, 1)) / scale  # [n, h, 1]
    x = (
        torch.einsum("nop,phw->nohw", w0[:, :, 2:], mask_feat)
        + w0[:, :, 0, None, None] * rel_x[:, None]
        + w0[:, :, 1, None, None] * rel_y[:, None]
        + b0[:, :, None, None]
    )
    x = F.relu(x).reshape(n, DYCONV_CHANNELS, h * w)
    x = F.relu(torch.bmm(w1, x) + b1[:, :, None])
    x = torch.bmm(w2, x) + b2[:, :, None]
    return x.reshape(n, h, w)


class MaskFeatModule(nn.Module):
    """Prototypes: levels resized (bilinear) to stride 8, concatenated, ``fusion_conv`` 1x1, 4
    ``stacked_convs`` (3x3 ConvBNAct), ``projection`` 1x1 to 8 channels."""

    def __init__(
        self, in_channels: int, feat_channels: int, num_levels: int = 3, stacked_convs: int = 4
    ) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.fusion_conv = nn.Conv2d(num_levels * in_channels, in_channels, 1)
        self.stacked_convs = nn.Sequential(
            *(
                ConvBNAct(in_channels if i == 0 else feat_channels, feat_channels, 3)
                for i in range(stacked_convs)
            )
        )
        self.projection = nn.Conv2d(feat_channels, NUM_PROTOTYPES, 1)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        fused = [feats[0]] + [
            F.interpolate(f, size=size, mode="bilinear") for f in feats[1 : self.num_levels]
        ]
        return self.projection(self.stacked_convs(self.fusion_conv(torch.cat(fused, 1))))


class RTMDetInsSepBNHead(nn.Module):
    """forward(feats) -> (cls_scores, bbox_dists, kernels, mask_feat): lists over levels of [B, C, h, w],
    [B, 4, h, w] (ltrb, input pixels), [B, 169, h, w], and the prototypes [B, 8, H/8, W/8]."""

    def __init__(
        self, num_classes: int, in_channels: int, feat_channels: int, stacked_convs: int = 2
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls_convs = nn.ModuleList()
        self.kernel_convs = nn.ModuleList()
        self.rtm_cls = nn.ModuleList()
        self.rtm_reg = nn.ModuleList()
        self.rtm_kernel = nn.ModuleList()
        for _ in STRIDES:
            self.cls_convs.append(
                nn.ModuleList(
                    ConvBNAct(in_channels if i == 0 else feat_channels, feat_channels, 3)
                    for i in range(stacked_convs)
                )
            )
            self.kernel_convs.append(
                nn.ModuleList(
                    ConvBNAct(in_channels if i == 0 else feat_channels, feat_channels, 3)
                    for i in range(stacked_convs)
                )
            )
            self.rtm_cls.append(nn.Conv2d(feat_channels, num_classes, 1))
            self.rtm_reg.append(nn.Conv2d(feat_channels, 4, 1))
            self.rtm_kernel.append(nn.Conv2d(feat_channels, NUM_GEN_PARAMS, 1))
        for level in self.cls_convs[1:]:  # share the conv weights of the first level, keep BN per level
            for i, block in enumerate(level):
                block.conv = self.cls_convs[0][i].conv
        self.reg_convs = (
            self.cls_convs
        )  # MMDetection's head appends cls_convs to reg_convs: one module, two names
        # MMDetection runs those layers twice per forward (as cls_convs, then as reg_convs) on the same
        # input, so
        # their BN running statistics move twice per step; running them once with momentum 1 - 0.9^2 gives the
        # same statistics at half the cost.
        for level in self.cls_convs:
            for block in level:
                block.bn.momentum = 1 - (1 - 0.1) ** 2
        self.mask_head = MaskFeatModule(in_channels, feat_channels, len(STRIDES))
        self.init_weights()

    def init_weights(self) -> None:
        """MMDetection's init: every conv N(0, 0.01) with zero bias, BN weight 1; class bias for prior 0.01,
        box-distance bias 1."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for cls, reg in zip(self.rtm_cls, self.rtm_reg):
            self.reset_classifier_layer(cls)
            nn.init.constant_(reg.bias, 1.0)

    @staticmethod
    def reset_classifier_layer(conv: nn.Conv2d) -> None:
        nn.init.normal_(conv.weight, 0.0, 0.01)
        nn.init.constant_(conv.bias, -math.log((1 - 0.01) / 0.01))

    def forward(self, feats: tuple[torch.Tensor, ...]):
        mask_feat = self.mask_head(feats)
        cls_scores, bbox_dists, kernels = [], [], []
        for idx, (x, stride) in enumerate(zip(feats, STRIDES)):
            cls_feat = x
            for layer in self.cls_convs[idx]:
                cls_feat = layer(cls_feat)
            kernel_feat = x
            for layer in self.kernel_convs[idx]:
                kernel_feat = layer(kernel_feat)
            cls_scores.append(self.rtm_cls[idx](cls_feat))
            kernels.append(self.rtm_kernel[idx](kernel_feat))
            # reg_convs is cls_convs: the regression features equal the classification features
            bbox_dists.append(F.relu(self.rtm_reg[idx](cls_feat)) * stride)
        return cls_scores, bbox_dists, kernels, mask_feat


__all__ = [
    "NUM_GEN_PARAMS",
    "STRIDES",
    "MaskFeatModule",
    "RTMDetInsSepBNHead",
    "distance_to_boxes",
    "dynamic_mask_logits",
    "grid_priors",
]
