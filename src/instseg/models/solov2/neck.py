"""FPN as MMDetection's ``FPN`` with ``start_level=0, num_outs=5, add_extra_convs=False``.

Keys: ``lateral_convs.{i}.conv.{weight,bias}`` (1x1) and ``fpn_convs.{i}.conv.{weight,bias}`` (3x3).
Outputs P2..P6 at strides 4, 8, 16, 32, 64 of the input; P6 is a stride-2 subsample of P5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from instseg.models.solov2.layers import ConvGN


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, ...], out_channels: int, num_outs: int = 5) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvGN(c, out_channels, 1, gn_groups=None, relu=False) for c in in_channels)
        self.fpn_convs = nn.ModuleList(
            ConvGN(out_channels, out_channels, 3, gn_groups=None, relu=False) for _ in in_channels
        )
        self.num_outs = num_outs
        for m in self.modules():  # MMDetection's FPN init: Xavier uniform, zero bias
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down: nearest upsampling to the finer size
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
