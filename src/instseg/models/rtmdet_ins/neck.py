"""CSPNeXtPAFPN, RTMDet's neck, with MMDetection's module names.

Top-down: ``reduce_layers`` (1x1) on the coarser map, 2x nearest upsampling, concat with the finer map,
``top_down_blocks`` (CSP layers); bottom-up: ``downsamples`` (3x3 stride 2), concat, ``bottom_up_blocks``;
then ``out_convs`` (3x3) to ``out_channels`` on every level. Inputs/outputs at strides 8, 16, 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from instseg.models.common.conv import ConvBNAct
from instseg.models.rtmdet_ins.backbone import CSPLayer


class CSPNeXtPAFPN(nn.Module):
    def __init__(self, in_channels: tuple[int, ...], out_channels: int, num_blocks: int) -> None:
        super().__init__()
        n = len(in_channels)
        self.in_channels = tuple(in_channels)
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(n - 1, 0, -1):
            self.reduce_layers.append(ConvBNAct(in_channels[idx], in_channels[idx - 1], 1))
            self.top_down_blocks.append(
                CSPLayer(in_channels[idx - 1] * 2, in_channels[idx - 1], num_blocks, add_identity=False)
            )
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(n - 1):
            self.downsamples.append(ConvBNAct(in_channels[idx], in_channels[idx], 3, stride=2))
            self.bottom_up_blocks.append(
                CSPLayer(in_channels[idx] * 2, in_channels[idx + 1], num_blocks, add_identity=False)
            )
        self.out_convs = nn.ModuleList(ConvBNAct(c, out_channels, 3) for c in in_channels)

    def forward(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        n = len(self.in_channels)
        inner = [inputs[-1]]
        for j, idx in enumerate(range(n - 1, 0, -1)):
            high = self.reduce_layers[j](inner[0])
            inner[0] = high
            up = F.interpolate(high, scale_factor=2.0, mode="nearest")
            inner.insert(0, self.top_down_blocks[j](torch.cat([up, inputs[idx - 1]], 1)))
        outs = [inner[0]]
        for idx in range(n - 1):
            down = self.downsamples[idx](outs[-1])
            outs.append(self.bottom_up_blocks[idx](torch.cat([down, inner[idx + 1]], 1)))
        return tuple(conv(o) for conv, o in zip(self.out_convs, outs))


__all__ = ["CSPNeXtPAFPN"]
