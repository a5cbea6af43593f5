"""ResNet backbone from torchvision with MMDetection's parameter names.

torchvision's ResNet (v1.5: stride in the 3x3 conv, which is MMDetection's ``style='pytorch'``) already uses
the names MMDetection's ``ResNet`` uses (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``
...). The only difference is torchvision's classifier (``fc``), which this module drops. So the key map is
the identity: ``backbone.<torchvision key>`` in an MMDetection checkpoint, and torchvision's ImageNet
``state_dict`` minus ``fc.*`` for ``--pretrained-backbone``.
"""

from __future__ import annotations

import torch
from torch import nn

_BUILDERS = {18: "resnet18", 34: "resnet34", 50: "resnet50", 101: "resnet101"}


class ResNet(nn.Module):
    """ResNet stem + 4 stages; returns C2..C5 (strides 4, 8, 16, 32 in input pixels).

    ``frozen_stages``: -1 trains everything; 1 (MMDetection's SOLOv2 default) freezes the stem and
    ``layer1``. ``norm_eval``: keep every BatchNorm in eval mode while training (MMDetection's default),
    which only makes sense with pretrained statistics.
    """

    def __init__(self, depth: int, *, frozen_stages: int = -1, norm_eval: bool = False) -> None:
        super().__init__()
        import torchvision

        if depth not in _BUILDERS:
            raise KeyError(f"unsupported ResNet depth {depth}; valid: {', '.join(map(str, _BUILDERS))}")
        tv = getattr(torchvision.models, _BUILDERS[depth])(weights=None)
        self.depth = depth
        self.conv1, self.bn1, self.relu, self.maxpool = tv.conv1, tv.bn1, tv.relu, tv.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = tv.layer1, tv.layer2, tv.layer3, tv.layer4
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze()

    def _freeze(self) -> None:
        if self.frozen_stages >= 0:
            for m in (self.conv1, self.bn1):
                m.eval()
                for p in m.parameters():
                    p.requires_grad_(False)
        for i in range(1, self.frozen_stages + 1):
            layer = getattr(self, f"layer{i}")
            layer.eval()
            for p in layer.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNet:
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return c2, c3, c4, c5


def torchvision_imagenet_url(depth: int) -> str:
    """torchvision's ImageNet (IMAGENET1K_V1, the weights MMDetection's ``torchvision://`` names) URL."""
    import torchvision

    enum_name = {18: "ResNet18_Weights", 34: "ResNet34_Weights", 50: "ResNet50_Weights", 101: "ResNet101_Weights"}
    return getattr(torchvision.models, enum_name[depth]).IMAGENET1K_V1.url
