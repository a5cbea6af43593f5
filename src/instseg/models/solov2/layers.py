"""Small layers with MMDetection's ``ConvModule`` parameter names (``conv``, ``gn``), and CoordConv."""

from __future__ import annotations

import torch
from torch import nn


class ConvGN(nn.Module):
    """Conv2d -> optional GroupNorm -> optional ReLU, keys ``conv.weight`` [+ ``conv.bias``], ``gn.*``.

    As MMDetection's ``ConvModule``: the conv has a bias only when there is no norm layer.
    """

    def __init__(
        self, cin: int, cout: int, kernel: int, *, gn_groups: int | None = 32, relu: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=gn_groups is None)
        if gn_groups is not None:
            self.gn = nn.GroupNorm(gn_groups, cout)
        self.with_norm = gn_groups is not None
        self.with_relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.with_norm:
            x = self.gn(x)
        return torch.relu(x) if self.with_relu else x


def coord_features(x: torch.Tensor) -> torch.Tensor:
    """CoordConv channels for ``x`` [B, C, H, W]: [B, 2, H, W] holding (x, y), each linearly spaced
    from -1 (first column/row) to 1 (last), the layout MMDetection's ``generate_coordinate`` produces."""
    b, _, h, w = x.shape
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy]).unsqueeze(0).expand(b, -1, -1, -1)


def init_normal(module: nn.Module, std: float = 0.01, bias: float = 0.0) -> None:
    """Normal(0, std) weights and constant bias for every Conv2d inside ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.constant_(m.bias, bias)
