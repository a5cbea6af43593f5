"""Native SOLOv2 (Wang et al. 2020) in PyTorch, with MMDetection 3.x parameter names.

``build_solov2(size, num_classes, ...)`` is the registry builder. Nothing heavy is imported here.
"""

from __future__ import annotations

from pathlib import Path


def build_solov2(
    size: str, num_classes: int, *, pretrained: bool | str | Path = False, pretrained_backbone: bool | str | Path = False,
    frozen_stages: int | None = None, norm_eval: bool | None = None, freeze: int = 0, **_: object,
):
    """Build SOLOv2 ``size`` (see ``config.SOLOV2_SIZES``) for ``num_classes`` classes.

    pretrained: True loads MMDetection's COCO checkpoint of this layout (through torch.hub's cache), a path
      loads that file; the category layer is re-initialized when the class count differs.
    pretrained_backbone: True loads torchvision's ImageNet ResNet (a path: that file).
    frozen_stages / norm_eval: default to MMDetection's (1, True) when any pretrained weights are loaded,
      and to (-1, False) when training from scratch (frozen random layers and random BN statistics would
      not learn).
    freeze: the engine's ``--freeze N`` (N > 0 freezes the stem and the first N ResNet stages; overrides
      frozen_stages).
    Other keyword arguments from the engine (``imgsz``) are accepted and ignored.
    """
    from instseg.models.solov2.config import get_solov2_config
    from instseg.models.solov2.model import SOLOv2
    from instseg.models.solov2.weights import load_backbone_imagenet, load_coco_pretrained

    cfg = get_solov2_config(size)
    has_weights = bool(pretrained) or bool(pretrained_backbone)
    if freeze > 0:
        frozen_stages = min(freeze, 4)
    model = SOLOv2(
        cfg, num_classes,
        frozen_stages=(1 if has_weights else -1) if frozen_stages is None else frozen_stages,
        norm_eval=has_weights if norm_eval is None else norm_eval,
    )
    if pretrained:
        load_coco_pretrained(model, size, None if pretrained is True else pretrained)
    elif pretrained_backbone:
        load_backbone_imagenet(model, None if pretrained_backbone is True else pretrained_backbone)
    return model


__all__ = ["build_solov2"]
