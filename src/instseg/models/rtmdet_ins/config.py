"""The sizes of RTMDet-Ins, as MMDetection 3.x's configs ``configs/rtmdet/rtmdet-ins_{tiny,s,m,l,x}_*.py``.

Every size: CSPNeXt P5 backbone (expand ratio 0.5, channel attention), CSPNeXtPAFPN neck, RTMDetInsSepBNHead
(2 stacked convs shared across levels with separate BN, 1x1 predictors, 8 prototypes, 3 dynamic convs of 8
channels), SiLU, BatchNorm eps 1e-5 / momentum 0.1 (the configs' SyncBN defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

MMDET_ZOO = "https://download.openmmlab.com/mmdetection/v3.0/rtmdet"


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


RTMDET_INS_SIZES: dict[str, RTMDetInsSize] = {
    "tiny": RTMDetInsSize(
        "tiny",
        0.167,
        0.375,
        1,
        f"{MMDET_ZOO}/rtmdet-ins_tiny_8xb32-300e_coco/rtmdet-ins_tiny_8xb32-300e_coco_20221130_151727-ec670f7e.pth",
        f"{MMDET_ZOO}/cspnext_rsb_pretrain/cspnext-tiny_imagenet_600e.pth",
    ),
    "s": RTMDetInsSize(
        "s",
        0.33,
        0.5,
        1,
        f"{MMDET_ZOO}/rtmdet-ins_s_8xb32-300e_coco/rtmdet-ins_s_8xb32-300e_coco_20221121_212604-fdc5d7ec.pth",
        f"{MMDET_ZOO}/cspnext_rsb_pretrain/cspnext-s_imagenet_600e.pth",
    ),
    "m": RTMDetInsSize(
        "m",
        0.67,
        0.75,
        2,
        f"{MMDET_ZOO}/rtmdet-ins_m_8xb32-300e_coco/rtmdet-ins_m_8xb32-300e_coco_20221123_001039-6eba602e.pth",
        None,
    ),
    "l": RTMDetInsSize(
        "l",
        1.0,
        1.0,
        3,
        f"{MMDET_ZOO}/rtmdet-ins_l_8xb32-300e_coco/rtmdet-ins_l_8xb32-300e_coco_20221124_103237-78d1d652.pth",
        None,
    ),
    "x": RTMDetInsSize(
        "x",
        1.33,
        1.25,
        4,
        f"{MMDET_ZOO}/rtmdet-ins_x_8xb16-300e_coco/rtmdet-ins_x_8xb16-300e_coco_20221124_111313-33d4595b.pth",
        None,
    ),
}


def get_rtmdet_ins_size(name: str) -> RTMDetInsSize:
    try:
        return RTMDET_INS_SIZES[name]
    except KeyError as e:
        raise KeyError(f"unknown RTMDet-Ins size {name!r}; valid: {', '.join(RTMDET_INS_SIZES)}") from e


__all__ = ["MMDET_ZOO", "RTMDET_INS_SIZES", "RTMDetInsSize", "get_rtmdet_ins_size"]
