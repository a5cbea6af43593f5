"""The Detectron2 settings of each size, as plain data (no detectron2 import), and the ``CfgNode`` built
from them (detectron2 imported inside :func:`make_cfg` only).

Each size is one of Detectron2's own model-zoo configs (``model_zoo.get_config``, read from the installed
package: no network). instseg then sets only the keys listed by :func:`cfg_overrides`; everything else (anchor
sizes, RPN/ROI thresholds, FPN, mask head, ``PIXEL_MEAN``/``PIXEL_STD``, ``FrozenBN``) stays the zoo's.
"""

from __future__ import annotations

from dataclasses import dataclass

ZOO_URL_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"


@dataclass(frozen=True)
class Detectron2Size:
    config: str  # path inside detectron2's model zoo
    checkpoint: str  # the COCO model_final file of that config, relative to ZOO_URL_PREFIX

    @property
    def url(self) -> str:
        return ZOO_URL_PREFIX + self.config.removesuffix(".yaml") + "/" + self.checkpoint


# Detectron2 MODEL_ZOO.md, COCO instance segmentation, 3x schedule (box AP / mask AP 41.0/37.2, 42.9/38.6,
# 44.3/39.5 on COCO val2017).
SIZES: dict[str, Detectron2Size] = {
    "r50-fpn": Detectron2Size("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
                              "137849600/model_final_f10217.pkl"),
    "r101-fpn": Detectron2Size("COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml",
                               "138205316/model_final_a3ec72.pkl"),
    "x101-32x8d-fpn": Detectron2Size("COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml",
                                     "139653917/model_final_2d9806.pkl"),
}

ZOO_FREEZE_AT = 2
"""``MODEL.BACKBONE.FREEZE_AT`` of every zoo config: stem and res2 frozen when fine-tuning."""
ROI_BATCH = 512
"""``MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE`` of the zoo configs (the detectron2-seed recipe uses 128)."""


def get_size(size: str) -> Detectron2Size:
    try:
        return SIZES[size]
    except KeyError as e:
        raise KeyError(f"unknown size {size!r} for detectron2-maskrcnn; valid: {', '.join(SIZES)}") from e


def cfg_overrides(num_classes: int, *, imgsz: int, device: str = "cpu", freeze_at: int = 0,
                  roi_batch: int = ROI_BATCH, score_thr: float = 0.05, nms_iou: float = 0.5,
                  max_det: int = 100) -> dict:
    """The Detectron2 cfg keys instseg sets on top of the zoo config (what ``train --dry-run`` prints).

    ``INPUT.MIN_SIZE_* = INPUT.MAX_SIZE_* = imgsz``: Detectron2's ``ResizeShortestEdge`` (in its
    ``DatasetMapper`` / ``DefaultPredictor``) is then the identity on instseg's letterboxed ``imgsz`` squares.
    ``INPUT.MASK_FORMAT = bitmask``: instseg gives full-resolution masks (``BitMasks``), not polygons.
    ``INPUT.RANDOM_FLIP = none``: augmentation is instseg's (``--fliplr``), never Detectron2's mapper's.
    """
    if not 0 <= freeze_at <= 5:
        raise ValueError(f"freeze={freeze_at}; valid: 0..5 (stem, res2..res5)")
    return {
        "MODEL.DEVICE": device,
        "MODEL.WEIGHTS": "",
        "MODEL.MASK_ON": True,
        "MODEL.ROI_HEADS.NUM_CLASSES": int(num_classes),
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": int(roi_batch),
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST": float(score_thr),
        "MODEL.ROI_HEADS.NMS_THRESH_TEST": float(nms_iou),
        "MODEL.BACKBONE.FREEZE_AT": int(freeze_at),
        "TEST.DETECTIONS_PER_IMAGE": int(max_det),
        "INPUT.MIN_SIZE_TRAIN": (int(imgsz),),
        "INPUT.MAX_SIZE_TRAIN": int(imgsz),
        "INPUT.MIN_SIZE_TEST": int(imgsz),
        "INPUT.MAX_SIZE_TEST": int(imgsz),
        "INPUT.MASK_FORMAT": "bitmask",
        "INPUT.RANDOM_FLIP": "none",
        "INPUT.FORMAT": "BGR",
    }


def make_cfg(size: str, num_classes: int, **kw):
    """Detectron2's zoo ``CfgNode`` of ``size`` with :func:`cfg_overrides` applied (frozen)."""
    import warnings

    with warnings.catch_warnings():  # detectron2.model_zoo imports pkg_resources (deprecated upstream)
        warnings.simplefilter("ignore")
        from detectron2 import model_zoo

    cfg = model_zoo.get_config(get_size(size).config)
    for key, value in cfg_overrides(num_classes, **kw).items():
        node, _, leaf = key.rpartition(".")
        target = cfg
        for part in node.split("."):
            target = getattr(target, part)
        setattr(target, leaf, value)
    cfg.freeze()
    return cfg


__all__ = ["SIZES", "Detectron2Size", "ZOO_FREEZE_AT", "ROI_BATCH", "get_size", "cfg_overrides", "make_cfg"]
