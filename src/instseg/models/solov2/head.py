"""SOLOv2 head: category and kernel branches over S x S grids, and the unified mask feature branch.

Parameter names follow MMDetection 3.x ``SOLOV2Head`` / ``MaskFeatModule`` (``cls_convs``,
``kernel_convs``, ``conv_cls``, ``conv_kernel``, ``mask_feature_head.convs_all_levels.{i}.conv{j}``,
``mask_feature_head.conv_pred``), so an MMDetection ``mask_head.*`` state_dict loads unchanged.
Dynamic kernels are 1x1 (MMDetection's ``dynamic_conv_size=1``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from instseg.models.solov2.config import Solov2Config
from instseg.models.solov2.layers import ConvGN, coord_features, init_normal


class MaskFeatModule(nn.Module):
    """Fuses FPN levels P2..P5 into one mask feature map at stride 4 (P5 gets CoordConv channels).

    Level i (0-based from P2) passes through max(1, i) conv+GN+ReLU layers, each but level 0's followed by
    a 2x bilinear upsampling; the sum goes through ``conv_pred`` (1x1 conv+GN+ReLU) to ``out_channels``.
    """

    def __init__(self, in_channels: int, feat_channels: int, out_channels: int, num_levels: int = 4,
                 gn_groups: int = 32) -> None:
        super().__init__()
        self.convs_all_levels = nn.ModuleList()
        for i in range(num_levels):
            seq = nn.Sequential()
            if i == 0:
                seq.add_module("conv0", ConvGN(in_channels, feat_channels, 3, gn_groups=gn_groups))
            for j in range(i):
                cin = (in_channels + 2 if i == num_levels - 1 else in_channels) if j == 0 else feat_channels
                seq.add_module(f"conv{j}", ConvGN(cin, feat_channels, 3, gn_groups=gn_groups))
                seq.add_module(f"upsample{j}", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.convs_all_levels.append(seq)
        self.conv_pred = ConvGN(feat_channels, out_channels, 1, gn_groups=gn_groups)
        init_normal(self, std=0.01)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        n = len(self.convs_all_levels)
        out = self.convs_all_levels[0](feats[0])
        for i in range(1, n):
            x = feats[i]
            if i == n - 1:
                x = torch.cat([x, coord_features(x)], 1)
            out = out + self.convs_all_levels[i](x)
        return self.conv_pred(out)


class SOLOV2Head(nn.Module):
    """Per level l: features resized to S_l x S_l -> category logits [B, C, S, S] and kernels [B, E, S, S]."""

    def __init__(self, num_classes: int, cfg: Solov2Config) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_grids = tuple(cfg.num_grids)
        self.kernel_channels = cfg.mask_out_channels
        c, f, g = cfg.fpn_channels, cfg.head_channels, cfg.gn_groups
        self.kernel_convs = nn.ModuleList(ConvGN(c + 2 if i == 0 else f, f, 3, gn_groups=g) for i in range(cfg.stacked_convs))
        self.cls_convs = nn.ModuleList(ConvGN(c if i == 0 else f, f, 3, gn_groups=g) for i in range(cfg.stacked_convs))
        self.conv_cls = nn.Conv2d(f, num_classes, 3, padding=1)
        self.conv_kernel = nn.Conv2d(f, self.kernel_channels, 3, padding=1)
        self.mask_feature_head = MaskFeatModule(c, cfg.mask_feat_channels, cfg.mask_out_channels, gn_groups=g)
        init_normal(self.kernel_convs)
        init_normal(self.cls_convs)
        init_normal(self.conv_kernel)
        self.reset_classifier()

    def reset_classifier(self) -> None:
        """Normal(0, 0.01) weights and the focal-loss prior bias (p = 0.01) for ``conv_cls``."""
        init_normal(self.conv_cls, std=0.01, bias=-math.log((1 - 0.01) / 0.01))

    def forward(self, feats: tuple[torch.Tensor, ...]) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """FPN levels P2..P6 -> (kernel preds per level, category logits per level, mask features [B,E,H/4,W/4])."""
        mask_feats = self.mask_feature_head(feats[:4])
        n = len(feats)
        kernels, logits = [], []
        for i, x in enumerate(feats):
            if i == 0:  # P2 goes down to stride 8, P6 up to P5's size (MMDetection's resize_feats)
                x = F.interpolate(x, scale_factor=0.5, mode="bilinear")
            elif i == n - 1:
                x = F.interpolate(x, size=feats[i - 1].shape[-2:], mode="bilinear")
            x = torch.cat([x, coord_features(x)], 1)
            x = F.interpolate(x, size=self.num_grids[i], mode="bilinear", align_corners=False)
            cate = x[:, :-2].contiguous()
            kern = x
            for conv in self.kernel_convs:
                kern = conv(kern)
            for conv in self.cls_convs:
                cate = conv(cate)
            kernels.append(self.conv_kernel(kern))
            logits.append(self.conv_cls(cate))
        return kernels, logits, mask_feats
