"""The sizes of RTMDet-Ins, as MMDetection 3.x's configs ``configs/rtmdet/rtmdet-ins_{tiny,s,m,l,x}_*.py``.

Every size: CSPNeXt P5 backbone (expand ratio 0.5, channel attention), CSPNeXtPAFPN neck, RTMDetInsSepBNHead
(2 stacked convs shared across levels with separate BN, 1x1 predictors, 8 prototypes, 3 dynamic convs of 8
channels), SiLU, BatchNorm eps 1e-5 / momentum 0.1 (the configs' SyncBN defaults). The numbers of each size
live in ``configs/models/rtmdet-ins.yaml`` (its ``layout``).
"""

from __future__ import annotations

from dataclasses import dataclass

from instseg.config import ConfigError
from instseg.models.registry import get_architecture, get_size

MMDET_ZOO = "https://download.openmmlab.com/mmdetection/v3.0/rtmdet"  # the URLs in the YAML start with it


@dataclass(frozen=True)
class RTMDetInsSize:
    """One size. ``widen``/``deepen`` scale CSPNeXt's P5 channels (64..1024) and block counts (3, 6, 6, 3)."""

    name: str
    deepen: float
    widen: float
    neck_blocks: int  # CSP blocks per neck CSPLayer
    coco_url: str  # MMDetection's COCO RTMDet-Ins checkpoint (meta + state_dict)
    backbone_url: str | None  # ImageNet CSPNeXt weights the config starts from (None: the config names none)

    @property
    def channels(self) -> tuple[int, int, int]:
        """Backbone output channels at strides 8, 16, 32 (the neck's inputs)."""
        return tuple(int(c * self.widen) for c in (256, 512, 1024))  # type: ignore[return-value]

    @property
    def feat_channels(self) -> int:
        """Neck output channels = the head's in/feat channels."""
        return int(256 * self.widen)


def _from_layout(name: str) -> RTMDetInsSize:
    """The ``layout`` of one size in ``configs/models/rtmdet-ins.yaml`` as an RTMDetInsSize."""
    layout = dict(get_size("rtmdet-ins", name).extra.get("layout") or {})
    try:
        return RTMDetInsSize(name=name, **layout)
    except TypeError as e:
        raise ConfigError(f"{get_architecture('rtmdet-ins').source}: sizes.{name}.layout: {e}") from e


RTMDET_INS_SIZES: dict[str, RTMDetInsSize] = {n: _from_layout(n) for n in get_architecture("rtmdet-ins").sizes}
"""Every size of ``configs/models/rtmdet-ins.yaml`` (its ``layout``), by name."""


def get_rtmdet_ins_size(name: str) -> RTMDetInsSize:
    get_size("rtmdet-ins", name)
    return RTMDET_INS_SIZES[name]


__all__ = ["MMDET_ZOO", "RTMDET_INS_SIZES", "RTMDetInsSize", "get_rtmdet_ins_size"]
