"""Conv + BatchNorm + activation blocks whose parameter names match mmcv's ``ConvModule``.

mmcv names the parts of a ``ConvModule`` ``conv``, ``bn`` (for BN/SyncBN) and ``activate``, so a block built
here has the state-dict keys ``<prefix>.conv.weight``, ``<prefix>.bn.weight``, ``<prefix>.bn.running_mean``...
as MMDetection's checkpoints do. The convolution has no bias when a norm follows it (mmcv's ``bias='auto'``).
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "relu": nn.ReLU, "none": nn.Identity}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module from its lower-case name (a key of ``ACTIVATIONS``)."""
    try:
        cls = ACTIVATIONS[name]
    except KeyError as e:
        raise KeyError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}") from e
    return cls() if cls is nn.Identity else cls(inplace=True)


class ConvBNAct(nn.Module):
    """``conv`` (k x k, padding k//2 unless given) -> ``bn`` -> ``activate``; keys as mmcv's ConvModule.

    norm=False gives a plain biased convolution followed by the activation.
    bn_eps / bn_momentum: BatchNorm settings (PyTorch's defaults = MMDetection's SyncBN config for RTMDet).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        act: str = "silu",
        norm: bool = True,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, pad, groups=groups, bias=not norm
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum) if norm else None
        self.activate = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.activate(x)


class DepthwiseSeparableConvBNAct(nn.Module):
    """``depthwise_conv`` (k x k, groups = in_channels) then ``pointwise_conv`` (1 x 1), each a ConvBNAct;
    keys as mmcv's ``DepthwiseSeparableConvModule``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        act: str = "silu",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNAct(
            in_channels,
            in_channels,
            kernel_size,
            stride,
            padding,
            groups=in_channels,
            act=act,
            bn_eps=bn_eps,
            bn_momentum=bn_momentum,
        )
        self.pointwise_conv = ConvBNAct(
            in_channels, out_channels, 1, act=act, bn_eps=bn_eps, bn_momentum=bn_momentum
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


__all__ = ["ACTIVATIONS", "ConvBNAct", "DepthwiseSeparableConvBNAct", "make_activation"]
