"""Detectron2's Mask R-CNN (``GeneralizedRCNN`` from its model-zoo configs) behind instseg's model contract,
trained by instseg's engine like the torchvision one (``instseg.models.maskrcnn``).

The wrapper adapts the conventions:

* images: instseg passes uint8 ``[B,3,H,W]`` RGB; Detectron2 gets ``{"image": float [3,H,W] BGR}`` per image
  (``INPUT.FORMAT = BGR``) and subtracts its ``PIXEL_MEAN`` / divides by ``PIXEL_STD`` itself;
* size: nothing is resized: ``INPUT.MIN/MAX_SIZE = imgsz`` makes Detectron2's own resize the identity on
  instseg's letterboxed squares, so the model sees exactly what ``DefaultPredictor`` would feed it;
* targets: ``Instances`` with ``gt_boxes`` (xyxy input pixels), ``gt_classes`` (0-based, Detectron2's own
  convention: the background is class ``num_classes``) and ``gt_masks`` as ``BitMasks`` at input
  resolution (``mask_stride = 1``);
* predictions: Detectron2's postprocess at input size (boxes clipped, masks pasted and thresholded at 0.5,
  as ``DefaultPredictor`` does): ``{boxes, scores, labels (0-based), masks bool [K,H,W]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from instseg.errors import TrainingError
from instseg.models.detectron2.config import ZOO_FREEZE_AT, ROI_BATCH, get_size, make_cfg


def build_detectron2_maskrcnn(size: str, num_classes: int, *, imgsz: int = 640, pretrained: bool | str | Path = False,
                              freeze: int = 0, device: str = "cpu", roi_batch: int = ROI_BATCH,
                              score_thr: float = 0.05, nms_iou: float = 0.5, max_det: int = 100, log=print,
                              **_: object) -> "Detectron2MaskRCNN":
    """A :class:`Detectron2MaskRCNN` of ``size`` for ``num_classes`` classes.

    ``pretrained``: True = the size's COCO model-zoo weights (torch.hub cache); a path = a Detectron2
    ``model_final.pth`` / ``.pkl``. The class-specific layers are re-initialized when the class count differs.
    ``freeze``: ``MODEL.BACKBONE.FREEZE_AT`` (0 none, 1 stem, 2 stem + res2, ... 5); 0 with pretrained weights
    means the zoo default, 2.
    """
    from detectron2.modeling import build_model

    from instseg.models.detectron2 import weights as W

    freeze_at = int(freeze) if freeze else (ZOO_FREEZE_AT if pretrained else 0)
    cfg = make_cfg(size, num_classes, imgsz=imgsz, device=str(device), freeze_at=freeze_at, roi_batch=roi_batch,
                   score_thr=score_thr, nms_iou=nms_iou, max_det=max_det)
    model = build_model(cfg)  # random init (Detectron2's own initializers), on cfg.MODEL.DEVICE
    if pretrained:
        path = W.zoo_file(get_size(size).url) if pretrained is True else Path(pretrained)
        W.load_into(model, W.load_state_dict(path), path, log=log)
    return Detectron2MaskRCNN(model, num_classes, cfg)


class Detectron2MaskRCNN(nn.Module):
    """instseg's model contract (``forward_train`` / ``predict`` / ``num_classes``) around ``GeneralizedRCNN``."""

    mask_stride = 1
    # prediction stays in the default memory format: it equals Detectron2's DefaultPredictor to 1e-4
    # (tests/backends/test_detectron2.py); channels_last reorders the convolutions' sums past that
    inference_channels_last = False

    def __init__(self, model, num_classes: int, cfg=None):
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.cfg = cfg

    @staticmethod
    def _bgr(images) -> list:
        if images.dtype.is_floating_point:
            raise TypeError("images must be uint8 [B,3,H,W] RGB (the model normalizes them itself)")
        return list(images.flip(1).float().unbind(0))  # RGB -> BGR, 0..255 floats, as DefaultPredictor feeds

    @staticmethod
    def instances(target: dict, image_size: tuple[int, int]):
        """Detectron2 ``Instances`` of one instseg target (degenerate boxes dropped, as Detectron2's
        ``filter_empty_instances`` does). A box-only instance (``has_mask`` False) keeps its empty mask:
        Detectron2's mask loss has no per-instance ignore."""
        from detectron2.structures import BitMasks, Boxes, Instances

        boxes = target["boxes"].float()
        keep = (boxes[:, 2] > boxes[:, 0] + 1e-5) & (boxes[:, 3] > boxes[:, 1] + 1e-5)
        inst = Instances(tuple(image_size))
        inst.gt_boxes = Boxes(boxes[keep])
        inst.gt_classes = target["labels"][keep].long()
        inst.gt_masks = BitMasks(target["masks"][keep].bool())
        return inst

    def forward_train(self, images, targets: Sequence[dict]) -> dict:
        """Losses of a batch: loss_cls, loss_box_reg, loss_mask, loss_rpn_cls, loss_rpn_loc."""
        from detectron2.utils.events import EventStorage

        size = tuple(images.shape[-2:])
        batch = [{"image": img, "instances": self.instances(t, size)} for img, t in zip(self._bgr(images), targets)]
        # Detectron2's heads log statistics (rpn/num_pos_anchors, mask_rcnn/accuracy...) to the current
        # EventStorage and fail without one; instseg's logger records the losses, so a throwaway one will do
        try:
            with EventStorage(0):
                return self.model(batch)
        except FloatingPointError as e:  # Detectron2's own check of the RPN outputs, before any loss exists
            raise TrainingError(f"Detectron2 stopped the step: {e} Lower the learning rate (--lr), add gradient "
                                "clipping (--clip-grad 10) or start from --pretrained weights") from e

    def predict(self, images, score_thr: float, max_det: int) -> list[dict]:
        """Detections per image in input pixels; ``masks`` bool [K,H,W] at input resolution (pasted and
        thresholded at 0.5 by Detectron2's ``detector_postprocess``)."""
        import torch

        head = self.model.roi_heads.box_predictor
        saved = (head.test_score_thresh, head.test_topk_per_image, self.training)
        head.test_score_thresh, head.test_topk_per_image = float(score_thr), int(max_det)
        self.eval()
        try:
            with torch.no_grad():
                outputs = self.model.inference([{"image": img} for img in self._bgr(images)])
        finally:
            head.test_score_thresh, head.test_topk_per_image = saved[0], saved[1]
            self.train(saved[2])
        preds = []
        for o in outputs:
            inst = o["instances"]
            h, w = inst.image_size
            masks = inst.pred_masks if inst.has("pred_masks") else torch.zeros((len(inst), h, w), dtype=torch.bool)
            preds.append({"boxes": inst.pred_boxes.tensor, "scores": inst.scores, "labels": inst.pred_classes,
                          "masks": masks})
        return preds


__all__ = ["build_detectron2_maskrcnn", "Detectron2MaskRCNN"]
