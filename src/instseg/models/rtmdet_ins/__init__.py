"""Native RTMDet-Ins (Lyu et al. 2022) in PyTorch, with MMDetection 3.x parameter names (no mmcv).

``build_rtmdet_ins(size, num_classes, ...)`` is the registry builder. Nothing heavy is imported here.
"""

from __future__ import annotations

from pathlib import Path


def build_rtmdet_ins(
    size: str,
    num_classes: int,
    *,
    pretrained: bool | str | Path = False,
    pretrained_backbone: bool | str | Path = False,
    freeze: int = 0,
    log=None,
    **_: object,
):
    """Build RTMDet-Ins ``size`` (tiny, s, m, l, x) for ``num_classes`` classes.

    pretrained: True loads MMDetection's COCO checkpoint of this size (torch.hub's cache; offline, the error
      names the file to place there), a path loads that MMDetection checkpoint; the class layers are
      re-initialized when the class count differs.
    pretrained_backbone: True loads the ImageNet CSPNeXt of the config (tiny, s), a path that file.
    freeze: the engine's ``--freeze N``: N > 0 freezes the stem and the first N backbone stages (at most 4).
    log: a callable receiving the loading notes (default: print). Other keyword arguments (``imgsz``) are
    ignored.
    """
    from instseg.models.rtmdet_ins.config import get_rtmdet_ins_size
    from instseg.models.rtmdet_ins.model import RTMDetIns
    from instseg.models.rtmdet_ins.weights import load_backbone_imagenet, load_coco_pretrained

    model = RTMDetIns(
        get_rtmdet_ins_size(size), num_classes, frozen_stages=min(freeze, 4) if freeze > 0 else -1
    )
    notes: list[str] = []
    if pretrained:
        notes = load_coco_pretrained(model, size, None if pretrained is True else pretrained)
    elif pretrained_backbone:
        notes = load_backbone_imagenet(
            model, size, None if pretrained_backbone is True else pretrained_backbone
        )
    for note in notes:
        (log or print)(note)
    return model


__all__ = ["build_rtmdet_ins"]
