"""The architecture registry: plain dicts, no import side effects.

``ARCHITECTURES[name]`` says which backend trains it, which sizes exist and their defaults. Model code is
imported only when a model is built (``build_model``), never when the registry is read, so ``instseg
list-models`` and ``instseg --help`` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SizeSpec:
    """One size of one architecture."""

    name: str
    description: str = ""
    params_m: float | None = None  # parameters in millions (with 80 classes unless noted)
    default_batch: int = 8
    default_imgsz: int = 640
    extra: dict = field(default_factory=dict)  # architecture-specific settings (channels, depth, ...)


@dataclass(frozen=True)
class ArchitectureSpec:
    name: str
    backend: str  # key into instseg.backends.BACKENDS
    sizes: dict[str, SizeSpec]
    default_size: str
    default_schedule: str = "ultralytics"
    mask_stride: int = 4  # stride of the target masks the training Dataset produces
    status: str = "available"  # "available" or "planned" (listed but not trainable yet)
    summary: str = ""
    builder: str = ""  # "module:function" building the nn.Module: fn(size: str, num_classes: int, **kw)


def _sizes(*specs: SizeSpec) -> dict[str, SizeSpec]:
    return {s.name: s for s in specs}


# Every entry must be real (buildable, trainable) unless status="planned"; `instseg list-models` prints it.
ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "maskrcnn": ArchitectureSpec(
        name="maskrcnn",
        backend="torchvision",
        summary="torchvision Mask R-CNN (ResNet-50 FPN)",
        default_size="r50-fpn-v2",
        default_schedule="step",
        mask_stride=1,
        status="available",
        builder="instseg.models.maskrcnn:build_maskrcnn",
        sizes=_sizes(
            SizeSpec("r50-fpn", "maskrcnn_resnet50_fpn", 44.4, default_batch=4, default_imgsz=640),
            SizeSpec("r50-fpn-v2", "maskrcnn_resnet50_fpn_v2", 46.4, default_batch=4, default_imgsz=640),
        ),
    ),
    "rtmdet-ins": ArchitectureSpec(
        name="rtmdet-ins",
        backend="native",
        summary="RTMDet-Ins (CSPNeXt + PAFPN + dynamic-conv mask head), MMDetection-compatible weights",
        default_size="tiny",
        default_schedule="ultralytics",
        mask_stride=4,
        status="available",
        builder="instseg.models.rtmdet_ins:build_rtmdet_ins",
        # MMDetection's rtmdet-ins_<size> configs; params_m with 80 classes (= mmdet 3.3.0's model, counted)
        sizes=_sizes(
            SizeSpec("tiny", "CSPNeXt d0.167 w0.375, neck/head 96", 5.64, default_batch=16),
            SizeSpec("s", "CSPNeXt d0.33 w0.5, neck/head 128", 10.18, default_batch=16),
            SizeSpec("m", "CSPNeXt d0.67 w0.75, neck/head 192", 27.58, default_batch=8),
            SizeSpec("l", "CSPNeXt d1.0 w1.0, neck/head 256", 57.37, default_batch=8),
            SizeSpec("x", "CSPNeXt d1.33 w1.25, neck/head 320", 102.7, default_batch=4),
        ),
    ),
    "solov2": ArchitectureSpec(
        name="solov2",
        backend="native",
        summary="SOLOv2 (ResNet + FPN + dynamic kernels, Matrix NMS), MMDetection-compatible weights",
        default_size="nano",
        default_schedule="warmup-cosine",
        mask_stride=4,
        status="available",
        builder="instseg.models.solov2:build_solov2",
        # instseg's sizes, then MMDetection's own configs under their names (their checkpoints load whole);
        # layouts in instseg.models.solov2.config.SOLOV2_SIZES; params_m with 80 classes
        sizes=_sizes(
            SizeSpec("nano", "ResNet18, FPN 128, mask feature 64, head 128x2", 13.06, default_batch=8, default_imgsz=1280),
            SizeSpec("small", "ResNet34, FPN 192, mask feature 96, head 192x2", 25.36, default_batch=6, default_imgsz=1280),
            SizeSpec("medium", "ResNet50, FPN 256, mask feature 128, head 256x2 (= mmdet light-r50 layout)", 31.34,
                     default_batch=4, default_imgsz=1280),
            SizeSpec("large", "ResNet101, FPN 384, mask feature 256, head 384x4", 66.46, default_batch=2, default_imgsz=1280),
            SizeSpec("light-r18", "mmdet solov2-light_r18 (COCO weights)", 18.27, default_batch=8, default_imgsz=768),
            SizeSpec("light-r34", "mmdet solov2-light_r34", 28.38, default_batch=8, default_imgsz=768),
            SizeSpec("light-r50", "mmdet solov2-light_r50 (COCO weights)", 31.34, default_batch=4, default_imgsz=768),
            SizeSpec("r50", "mmdet solov2_r50 (COCO weights)", 46.59, default_batch=2, default_imgsz=1344),
            SizeSpec("r101", "mmdet solov2_r101", 65.59, default_batch=2, default_imgsz=1344),
        ),
    ),
    "yolo11-seg": ArchitectureSpec(
        name="yolo11-seg",
        backend="ultralytics",
        summary="Ultralytics YOLO11-seg (optional extra: pip install 'instseg[yolo]', AGPL-3.0)",
        default_size="n",
        status="available",
        # params: SegmentationModel("yolo11<s>-seg.yaml", nc=80) built once with ultralytics 8.4.190
        sizes=_sizes(*(SizeSpec(s, f"yolo11{s}-seg", p, default_batch=16)
                       for s, p in zip("nsmlx", (2.88, 10.11, 22.42, 27.68, 62.14)))),
    ),
    "yolo26-seg": ArchitectureSpec(
        name="yolo26-seg",
        backend="ultralytics",
        summary="Ultralytics YOLO26-seg (optional extra: pip install 'instseg[yolo]', AGPL-3.0)",
        default_size="n",
        status="available",
        # params: SegmentationModel("yolo26<s>-seg.yaml", nc=80) built once with ultralytics 8.4.190
        sizes=_sizes(*(SizeSpec(s, f"yolo26{s}-seg", p, default_batch=16)
                       for s, p in zip("nsmlx", (3.13, 11.51, 27.11, 31.52, 70.69)))),
    ),
    "detectron2-maskrcnn": ArchitectureSpec(
        name="detectron2-maskrcnn",
        backend="detectron2",
        summary="Detectron2 Mask R-CNN (model-zoo 3x configs), trained by instseg's engine (install from source)",
        default_size="r50-fpn",
        default_schedule="step",
        mask_stride=1,
        status="available",
        builder="instseg.models.detectron2:build_detectron2_maskrcnn",
        # COCO-InstanceSegmentation/mask_rcnn_*_FPN_3x.yaml; params: detectron2's build_model, 80 classes
        sizes=_sizes(
            SizeSpec("r50-fpn", "mask_rcnn_R_50_FPN_3x", 44.34, default_batch=4, default_imgsz=640),
            SizeSpec("r101-fpn", "mask_rcnn_R_101_FPN_3x", 63.28, default_batch=4, default_imgsz=640),
            SizeSpec("x101-32x8d-fpn", "mask_rcnn_X_101_32x8d_FPN_3x", 107.43, default_batch=2, default_imgsz=640),
        ),
    ),
}


def get_architecture(name: str) -> ArchitectureSpec:
    try:
        return ARCHITECTURES[name]
    except KeyError as e:
        valid = ", ".join(sorted(ARCHITECTURES))
        raise KeyError(f"unknown architecture {name!r}; valid: {valid}") from e


def get_size(arch: str, size: str) -> SizeSpec:
    spec = get_architecture(arch)
    try:
        return spec.sizes[size]
    except KeyError as e:
        valid = ", ".join(spec.sizes)
        raise KeyError(f"unknown size {size!r} for {arch}; valid: {valid}") from e
