"""SOLOv2 sizes: one frozen dataclass per size, in a plain dict.

Two families of sizes live here:

* instseg's own sizes ``nano/small/medium/large`` (the original tool's: ResNet18/34/50/101 with FPN
  128/192/256/384 channels and mask features 64/96/128/256). The kernel/category branch width equals the
  FPN width (SOLOv2-light style), with 2 stacked convs for nano/small/medium and 4 for large. ``medium``
  has exactly the layout of MMDetection's ``solov2-light_r50`` so that its COCO weights load whole.
* MMDetection's own configs under their names (``light-r18``, ``light-r34``, ``light-r50``, ``r50``,
  ``r101``): same channels, stacked convs and scale ranges as ``configs/solov2/*.py`` of MMDetection 3.3.0,
  so their published ``state_dict``s load with no missing or unexpected keys.

The numbers live in ``configs/models/solov2.yaml`` (each size's ``layout``); this module turns them into
frozen dataclasses. Scale ranges are in input pixels (``sqrt(box_w * box_h)`` of the ground-truth box at network input size).
"""

from __future__ import annotations

from dataclasses import dataclass

from instseg.config import ConfigError
from instseg.models.registry import get_architecture, get_size

# MMDetection's defaults (configs/solov2/solov2_r50_fpn_1x_coco.py), the dataclass default of scale_ranges.
FULL_SCALE_RANGES = ((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048))


@dataclass(frozen=True)
class Solov2Config:
    """Every architectural setting of one SOLOv2 size (MMDetection's names in parentheses)."""

    depth: int  # ResNet depth: 18, 34, 50 or 101 (backbone.depth)
    fpn_channels: int  # FPN output channels = head input channels (neck.out_channels)
    head_channels: int  # width of the kernel and category branches (mask_head.feat_channels)
    stacked_convs: int  # 3x3 conv+GN+ReLU layers in each branch (mask_head.stacked_convs)
    mask_feat_channels: int  # hidden width of the unified mask branch (mask_feature_head.feat_channels)
    mask_out_channels: int  # channels E of the mask feature map = dynamic kernel length (out_channels)
    scale_ranges: tuple[tuple[int, int], ...] = FULL_SCALE_RANGES
    num_grids: tuple[int, ...] = (40, 36, 24, 16, 12)
    strides: tuple[int, ...] = (8, 8, 16, 32, 32)  # per level; also the minimum mask area at test time
    pos_scale: float = 0.2  # centre region: this fraction of the half box size
    gn_groups: int = 32
    coco_url: str | None = None  # MMDetection COCO checkpoint with this exact layout (``--pretrained``)
    description: str = ""

    @property
    def backbone_channels(self) -> tuple[int, int, int, int]:
        """Output channels of ResNet stages C2..C5."""
        base = (64, 128, 256, 512)
        return base if self.depth < 50 else tuple(4 * c for c in base)  # type: ignore[return-value]


def _from_layout(size: str) -> Solov2Config:
    """The ``layout`` of one size in ``configs/models/solov2.yaml`` as a Solov2Config."""
    spec = get_size("solov2", size)
    layout = dict(spec.extra.get("layout") or {})
    try:
        for key in ("scale_ranges", "num_grids", "strides"):
            if key in layout:
                value = layout[key]
                layout[key] = tuple(tuple(v) for v in value) if key == "scale_ranges" else tuple(value)
        return Solov2Config(**layout)
    except TypeError as e:
        raise ConfigError(f"{get_architecture('solov2').source}: sizes.{size}.layout: {e}") from e


SOLOV2_SIZES: dict[str, Solov2Config] = {name: _from_layout(name) for name in get_architecture("solov2").sizes}
"""Every size of ``configs/models/solov2.yaml`` (its ``layout``), by name."""


@dataclass(frozen=True)
class Solov2TestConfig:
    """Post-processing settings (MMDetection's ``test_cfg`` of every SOLOv2 config)."""

    nms_pre: int = 500  # candidates kept (by score) before Matrix NMS
    score_thr: float = 0.1  # category score threshold before mask decoding
    mask_thr: float = 0.5  # mask probability threshold
    filter_thr: float = 0.05  # score threshold after Matrix NMS decay
    kernel: str = "gaussian"  # Matrix NMS decay kernel: "gaussian" or "linear"
    sigma: float = 2.0  # gaussian kernel parameter
    max_per_img: int = 100


def get_solov2_config(size: str) -> Solov2Config:
    """The config of ``size``; an unknown size raises ConfigError (a KeyError too) listing the valid ones."""
    get_size("solov2", size)
    return SOLOV2_SIZES[size]
