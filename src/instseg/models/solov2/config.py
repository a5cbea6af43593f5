"""SOLOv2 sizes: one frozen dataclass per size, in a plain dict.

Two families of sizes live here:

* instseg's own sizes ``nano/small/medium/large`` (the original tool's: ResNet18/34/50/101 with FPN
  128/192/256/384 channels and mask features 64/96/128/256). The kernel/category branch width equals the
  FPN width (SOLOv2-light style), with 2 stacked convs for nano/small/medium and 4 for large. ``medium``
  has exactly the layout of MMDetection's ``solov2-light_r50`` so that its COCO weights load whole.
* MMDetection's own configs under their names (``light-r18``, ``light-r34``, ``light-r50``, ``r50``,
  ``r101``): same channels, stacked convs and scale ranges as ``configs/solov2/*.py`` of MMDetection 3.3.0,
  so their published ``state_dict``s load with no missing or unexpected keys.

Scale ranges are in input pixels (``sqrt(box_w * box_h)`` of the ground-truth box at network input size).
"""

from __future__ import annotations

from dataclasses import dataclass

# MMDetection's defaults (configs/solov2/solov2_r50_fpn_1x_coco.py and the -light variants).
FULL_SCALE_RANGES = ((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048))
LIGHT_SCALE_RANGES = ((1, 56), (28, 112), (56, 224), (112, 448), (224, 896))
_MMDET = "https://download.openmmlab.com/mmdetection/v2.0/solov2/"


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


SOLOV2_SIZES: dict[str, Solov2Config] = {
    "nano": Solov2Config(18, 128, 128, 2, 64, 64, description="ResNet18, FPN 128, mask feature 64"),
    "small": Solov2Config(34, 192, 192, 2, 96, 96, description="ResNet34, FPN 192, mask feature 96"),
    "medium": Solov2Config(
        50, 256, 256, 2, 128, 128,
        coco_url=_MMDET + "solov2_light_r50_fpn_3x_coco/solov2_light_r50_fpn_3x_coco_20220512_165256-c93a6074.pth",
        description="ResNet50, FPN 256, mask feature 128 (layout of mmdet solov2-light_r50)",
    ),
    "large": Solov2Config(101, 384, 384, 4, 256, 256, description="ResNet101, FPN 384, mask feature 256"),
    "light-r18": Solov2Config(
        18, 256, 256, 2, 128, 128, LIGHT_SCALE_RANGES,
        coco_url=_MMDET + "solov2_light_r18_fpn_3x_coco/solov2_light_r18_fpn_3x_coco_20220511_083717-75fa355b.pth",
        description="mmdet solov2-light_r18_fpn_ms-3x_coco",
    ),
    "light-r34": Solov2Config(
        34, 256, 256, 2, 128, 128, LIGHT_SCALE_RANGES, description="mmdet solov2-light_r34_fpn_ms-3x_coco"
    ),
    "light-r50": Solov2Config(
        50, 256, 256, 2, 128, 128, LIGHT_SCALE_RANGES,
        coco_url=_MMDET + "solov2_light_r50_fpn_3x_coco/solov2_light_r50_fpn_3x_coco_20220512_165256-c93a6074.pth",
        description="mmdet solov2-light_r50_fpn_ms-3x_coco",
    ),
    "r50": Solov2Config(
        50, 256, 512, 4, 128, 256,
        coco_url=_MMDET + "solov2_r50_fpn_3x_coco/solov2_r50_fpn_3x_coco_20220512_125856-fed092d4.pth",
        description="mmdet solov2_r50_fpn_ms-3x_coco (same layout as solov2_r50_fpn_1x_coco)",
    ),
    "r101": Solov2Config(101, 256, 512, 4, 128, 256, description="mmdet solov2_r101_fpn_ms-3x_coco"),
}


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
    """The config of ``size``; an unknown size raises KeyError listing the valid ones."""
    try:
        return SOLOV2_SIZES[size]
    except KeyError as e:
        raise KeyError(f"unknown SOLOv2 size {size!r}; valid: {', '.join(SOLOV2_SIZES)}") from e
