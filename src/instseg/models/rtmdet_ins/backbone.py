"""CSPNeXt, the backbone of RTMDet (Lyu et al. 2022), with MMDetection's module names.

Layout (P5): ``stem`` (three 3x3 convs, stride 2) then ``stage1..stage4``, each a stride-2 3x3 conv, (stage 4:
an SPP bottleneck,) and a CSP layer of CSPNeXt blocks (3x3 conv + 5x5 depthwise-separable conv) with channel
attention. Outputs: the stage 2, 3, 4 maps (strides 8, 16, 32).
"""

from __future__ import annotations

import torch
from torch import nn

from instseg.models.common.conv import ConvBNAct, DepthwiseSeparableConvBNAct

# (in, out, blocks, add_identity, use_spp) of each stage before widen/deepen, as CSPNeXt's 'P5' arch
P5_STAGES = (
    (64, 128, 3, True, False),
    (128, 256, 6, True, False),
    (256, 512, 6, True, False),
    (512, 1024, 3, False, True),
)


class ChannelAttention(nn.Module):
    """x * hardsigmoid(fc(global average of x)), ``fc`` a biased 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPNeXtBlock(nn.Module):
    """3x3 ConvBNAct then 5x5 depthwise-separable ConvBNAct, plus the input when ``add_identity``."""

    def __init__(self, in_channels: int, out_channels: int, add_identity: bool = True) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3)
        self.conv2 = DepthwiseSeparableConvBNAct(out_channels, out_channels, 5)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross-stage partial layer: ``main_conv`` -> ``blocks`` and ``short_conv`` (1x1 each, half the output
    channels), concatenated (main first), optional channel ``attention``, then ``final_conv`` (1x1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_blocks: int,
        add_identity: bool = True,
        channel_attention: bool = False,
    ) -> None:
        super().__init__()
        mid = int(out_channels * 0.5)
        self.main_conv = ConvBNAct(in_channels, mid, 1)
        self.short_conv = ConvBNAct(in_channels, mid, 1)
        self.final_conv = ConvBNAct(2 * mid, out_channels, 1)
        self.blocks = nn.Sequential(*(CSPNeXtBlock(mid, mid, add_identity) for _ in range(num_blocks)))
        self.attention = ChannelAttention(2 * mid) if channel_attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), dim=1)
        if self.attention is not None:
            y = self.attention(y)
        return self.final_conv(y)


class SPPBottleneck(nn.Module):
    """1x1 conv to half the channels, max-pools of sizes 5/9/13 (stride 1) concatenated, 1x1 conv out."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_sizes: tuple[int, ...] = (5, 9, 13)
    ) -> None:
        super().__init__()
        mid = in_channels // 2
        self.conv1 = ConvBNAct(in_channels, mid, 1)
        self.poolings = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.conv2 = ConvBNAct(mid * (len(kernel_sizes) + 1), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class CSPNeXt(nn.Module):
    """CSPNeXt P5 scaled by ``deepen`` (block counts, rounded, at least 1) and ``widen`` (channels).

    forward(x: float [B,3,H,W] normalized) -> (C3, C4, C5) at strides 8, 16, 32.
    frozen_stages: -1 trains everything; k >= 0 freezes the stem and stages 1..k (eval mode, no grads).
    """

    def __init__(self, deepen: float, widen: float, frozen_stages: int = -1) -> None:
        super().__init__()
        stem_out = int(P5_STAGES[0][0] * widen)
        self.stem = nn.Sequential(
            ConvBNAct(3, stem_out // 2, 3, stride=2),
            ConvBNAct(stem_out // 2, stem_out // 2, 3),
            ConvBNAct(stem_out // 2, stem_out, 3),
        )
        self.layers = ["stem"]
        for i, (cin, cout, blocks, identity, spp) in enumerate(P5_STAGES):
            cin, cout = int(cin * widen), int(cout * widen)
            parts: list[nn.Module] = [ConvBNAct(cin, cout, 3, stride=2)]
            if spp:
                parts.append(SPPBottleneck(cout, cout))
            parts.append(
                CSPLayer(cout, cout, max(round(blocks * deepen), 1), identity, channel_attention=True)
            )
            self.add_module(f"stage{i + 1}", nn.Sequential(*parts))
            self.layers.append(f"stage{i + 1}")
        self.out_indices = (2, 3, 4)
        self.frozen_stages = frozen_stages
        self._freeze()

    def _freeze(self) -> None:
        for name in self.layers[: self.frozen_stages + 1]:
            module = getattr(self, name)
            module.eval()
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> CSPNeXt:
        super().train(mode)
        self._freeze()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


__all__ = ["P5_STAGES", "CSPLayer", "CSPNeXt", "CSPNeXtBlock", "ChannelAttention", "SPPBottleneck"]
