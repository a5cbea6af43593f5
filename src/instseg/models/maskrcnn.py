"""torchvision Mask R-CNN behind instseg's model contract (trained by instseg's engine, torchvision backend).

The wrapper adapts torchvision's conventions to instseg's:

* class ids: torchvision reserves 0 for the background, so ``labels + 1`` goes in and ``labels - 1`` comes out;
* images: instseg passes uint8 ``[B,3,H,W]`` RGB; torchvision gets a list of float ``[3,H,W]`` in [0, 1] and
  normalizes with its ImageNet mean/std itself;
* size: ``min_size = max_size = imgsz``, so torchvision's ``GeneralizedRCNNTransform`` resize factor
  ``min(min_size / short_side, max_size / long_side)`` is exactly 1 for every image letterboxed to ``imgsz``
  (long side == imgsz): its resize is the identity and predictions come back in input pixels;
* masks: targets at stride 1 (``mask_stride=1`` in the registry); predicted masks are probabilities
  ``[K,H,W]`` at input resolution (the engine thresholds them at 0.5 when it encodes RLE).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from instseg.errors import WeightsError

SIZES = {
    "r50-fpn": ("maskrcnn_resnet50_fpn", "MaskRCNN_ResNet50_FPN_Weights"),
    "r50-fpn-v2": ("maskrcnn_resnet50_fpn_v2", "MaskRCNN_ResNet50_FPN_V2_Weights"),
}
BACKBONE_STAGES = (("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))
"""``--freeze N`` freezes the first N of these ResNet stages (stem, layer1..layer4)."""


def _pretrained_model(fn, weights_enum, size: str, **kw):
    """torchvision's COCO Mask R-CNN; offline, a WeightsError naming the URL and the file to place."""
    import torch

    weights = weights_enum.COCO_V1
    try:
        return fn(weights=weights, **kw)
    except Exception as e:  # URLError, HTTPError, hash mismatch, truncated file...
        target = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        raise WeightsError(
            f"cannot load the pretrained {size} weights ({type(e).__name__}: {str(e)[:160]}). Download "
            f"{weights.url} and place it at {target} (or pass --weights path/to/an/instseg.pt)") from e


def build_maskrcnn(size: str, num_classes: int, *, imgsz: int = 640, pretrained: bool | str | Path = False,
                   freeze: int = 0,
                   score_thr: float = 0.05, nms_iou: float = 0.5, max_det: int = 100, roi_batch: int = 512,
                   **_: object):
    """A :class:`MaskRCNNModel` of ``size`` ('r50-fpn' or 'r50-fpn-v2') for ``num_classes`` classes.

    ``pretrained``: True = torchvision's COCO weights with the box and mask predictors re-initialized for
    ``num_classes + 1`` outputs; a path = a torchvision ``MaskRCNN.state_dict()`` file (or ``{"model": ...}``
    as torchvision's reference scripts save it), predictors re-initialized when the class count differs.
    ``freeze``: the first N backbone stages get ``requires_grad=False``. ``roi_batch``: RoIs sampled per image
    for the box and mask heads (torchvision's ``box_batch_size_per_image``).
    """
    import torchvision.models.detection as tvd
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    if size not in SIZES:
        raise KeyError(f"unknown size {size!r} for maskrcnn; valid: {', '.join(SIZES)}")
    fn_name, enum_name = SIZES[size]
    fn = getattr(tvd, fn_name)
    kw = dict(min_size=imgsz, max_size=imgsz, box_score_thresh=score_thr, box_nms_thresh=nms_iou,
              box_detections_per_img=max_det, box_batch_size_per_image=roi_batch)
    if isinstance(pretrained, (str, Path)):
        model = fn(weights=None, weights_backbone=None, num_classes=num_classes + 1, **kw)
        load_torchvision_state(model, Path(pretrained))
    elif pretrained:  # every stage trainable; --freeze decides what is frozen, not torchvision's default of 3
        model = _pretrained_model(fn, getattr(tvd, enum_name), size, trainable_backbone_layers=5, **kw)
        box_in = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(box_in, num_classes + 1)
        mask_in = model.roi_heads.mask_predictor.conv5_mask.in_channels
        model.roi_heads.mask_predictor = MaskRCNNPredictor(mask_in, 256, num_classes + 1)
    else:
        model = fn(weights=None, weights_backbone=None, num_classes=num_classes + 1, **kw)
    wrapper = MaskRCNNModel(model, num_classes)
    wrapper.freeze_stages(freeze)
    return wrapper


def load_torchvision_state(model, path: Path) -> None:
    """Load a torchvision Mask R-CNN state dict into ``model``: every tensor must fit but the class layers
    (box predictor, mask logits), which keep their fresh init when the class count differs."""
    from instseg.models.common.checkpoints import read_mmdet_state_dict

    state, _ = read_mmdet_state_dict(path)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(f"{path}: not a torchvision Mask R-CNN of this size: {len(missing)} missing keys "
                           f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}; pick the --model "
                           "it was trained as (r50-fpn: maskrcnn_resnet50_fpn, r50-fpn-v2: ..._v2)")
    class_layers = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")
    bad = [k for k in own if own[k].shape != state[k].shape and not k.startswith(class_layers)]
    if bad:
        raise WeightsError(f"{path}: shapes differ from this model's at {bad[:3]}; pick the matching --model")
    model.load_state_dict({k: v for k, v in state.items() if own[k].shape == v.shape}, strict=False)


class MaskRCNNModel(nn.Module):
    """instseg's model contract (``forward_train`` / ``predict`` / ``num_classes``) around torchvision's MaskRCNN."""

    mask_stride = 1

    def __init__(self, model, num_classes: int):
        super().__init__()
        self.model = model
        self.num_classes = num_classes

    def freeze_stages(self, n: int) -> None:
        if not 0 <= n <= len(BACKBONE_STAGES):
            raise ValueError(f"freeze={n}; valid: 0..{len(BACKBONE_STAGES)} (stem, layer1..layer4)")
        body = self.model.backbone.body
        for stage in BACKBONE_STAGES[:n]:
            for name in stage:
                module = getattr(body, name, None)
                if module is not None:
                    for p in module.parameters():
                        p.requires_grad_(False)

    @staticmethod
    def _images(images) -> list:
        if images.dtype.is_floating_point:
            raise TypeError("images must be uint8 [B,3,H,W] RGB (the model normalizes them itself)")
        return list(images.float().div_(255.0).unbind(0))

    def forward_train(self, images, targets: Sequence[dict]) -> dict:
        """Losses of a batch: loss_classifier, loss_box_reg, loss_mask, loss_objectness, loss_rpn_box_reg."""
        tv_targets = []
        for t in targets:
            boxes = t["boxes"].float()
            keep = (boxes[:, 2] > boxes[:, 0] + 1e-3) & (boxes[:, 3] > boxes[:, 1] + 1e-3)
            tv_targets.append({"boxes": boxes[keep], "labels": t["labels"][keep].long() + 1,
                               "masks": t["masks"][keep].to(images.device, non_blocking=True)})
        return self.model(self._images(images), tv_targets)

    def predict(self, images, score_thr: float, max_det: int) -> list[dict]:
        """Detections per image in input pixels; ``masks`` are probabilities [K,H,W] at input resolution."""
        import torch

        heads = self.model.roi_heads
        saved = (heads.score_thresh, heads.detections_per_img, self.training)
        heads.score_thresh, heads.detections_per_img = float(score_thr), int(max_det)
        self.eval()
        try:
            with torch.no_grad():
                outputs = self.model(self._images(images))
        finally:
            heads.score_thresh, heads.detections_per_img = saved[0], saved[1]
            self.train(saved[2])
        return [{"boxes": o["boxes"], "scores": o["scores"], "labels": o["labels"] - 1,
                 "masks": o["masks"][:, 0]} for o in outputs]


__all__ = ["build_maskrcnn", "MaskRCNNModel", "SIZES", "BACKBONE_STAGES"]
