"""Detectron2's Mask R-CNN (R50 / R101 / X101-32x8d FPN, model-zoo 3x configs) in instseg's model contract.

Importing this package imports nothing of Detectron2 (or torch): :func:`build_detectron2_maskrcnn` does.
"""

from __future__ import annotations


def build_detectron2_maskrcnn(size: str, num_classes: int, **kw):
    from instseg.models.detectron2.model import build_detectron2_maskrcnn as build

    return build(size, num_classes, **kw)


__all__ = ["build_detectron2_maskrcnn"]
