"""The traced graphs: one ``nn.Module`` per family that turns a uint8 RGB batch into the raw outputs the
numpy post-process (``instseg.backends.onnx_post``) reads. Normalization (and RTMDet-Ins' RGB->BGR flip,
SOLOv2's padding) happens inside, through the model's own methods, so the graph sees exactly the tensors
the eager model sees.

=============  ==================================================================================
family         outputs (B = batch, N = points or grid cells of all levels, C = classes)
=============  ==================================================================================
rtmdet-ins     scores [B,N,C] (sigmoid), dists [B,N,4] (ltrb, input px), kernels [B,N,169],
               mask_feat [B,8,H/8,W/8]
solov2         probs [B,N,C] (sigmoid + point NMS), kernels [B,N,E], mask_feat [B,E,H/4,W/4]
maskrcnn       boxes [K,4], scores [K], labels [K] (1-based), masks [K,1,H,W]: torchvision's own
               post-processing, traced (batch 1)
detectron2-    boxes [K,4], scores [K], labels [K] (0-based), mask_probs [K,M,M] (the predicted class's
maskrcnn       28x28 mask): Detectron2's inference up to its ``detector_postprocess``, traced (batch 1);
               the pasting into the image is numpy (``onnx_post.paste_masks``), as Detectron2 pastes
=============  ==================================================================================
"""

from __future__ import annotations

import torch
from torch import nn

OUTPUTS = {
    "rtmdet-ins": ["scores", "dists", "kernels", "mask_feat"],
    "solov2": ["probs", "kernels", "mask_feat"],
    "maskrcnn": ["boxes", "scores", "labels", "masks"],
    "detectron2-maskrcnn": ["boxes", "scores", "labels", "mask_probs"],
}


def _flat(maps: list[torch.Tensor]) -> torch.Tensor:
    """Per-level maps [B, D, h, w] -> [B, sum(h*w), D], row-major per level, levels concatenated."""
    b = maps[0].shape[0]
    return torch.cat([m.permute(0, 2, 3, 1).reshape(b, -1, m.shape[1]) for m in maps], 1)


class RTMDetInsGraph(nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        cls_scores, bbox_dists, kernels, mask_feat = self.model.forward_heads(images)
        return _flat(cls_scores).sigmoid(), _flat(bbox_dists), _flat(kernels), mask_feat


class SOLOv2Graph(nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        from instseg.models.solov2.postprocess import point_nms

        kernels, logits, mask_feats = self.model(images)
        return _flat([point_nms(lg.sigmoid()) for lg in logits]), _flat(kernels), mask_feats


class MaskRCNNGraph(nn.Module):
    """torchvision's eval-mode Mask R-CNN on one uint8 image [1,3,H,W]; its thresholds are set at export."""

    def __init__(self, wrapper) -> None:
        super().__init__()
        self.model = wrapper.model

    def forward(self, images: torch.Tensor):
        dtype = next(self.model.parameters()).dtype  # float16 when exported with --half
        out = self.model([images[0].to(dtype) / 255.0])[0]
        return out["boxes"], out["scores"], out["labels"], out["masks"]


class Detectron2Graph(nn.Module):
    """Detectron2's eval-mode ``GeneralizedRCNN`` on one uint8 RGB image [1,3,H,W] (flipped to BGR and
    normalized by the model itself, as in prediction), step by step as its ``inference`` runs one image:
    backbone, RPN, box head and ``fast_rcnn_inference_single_image``, mask head; without the per-image
    ``split`` of batched lists (traced, it would fix the detection count) and of
    ``detector_postprocess`` only its dropping of empty boxes (the boxes are already in input pixels: instseg
    feeds the letterboxed image and nothing is resized). The masks are the 28x28 probabilities of each box's
    class. The box predictor's thresholds are set at export."""

    def __init__(self, wrapper) -> None:
        super().__init__()
        self.wrapper = wrapper
        self.model = wrapper.model

    def forward(self, images: torch.Tensor):
        from detectron2.modeling.roi_heads.fast_rcnn import fast_rcnn_inference_single_image

        m, rh = self.model, self.model.roi_heads
        head = rh.box_predictor
        dtype = next(m.parameters()).dtype
        batch = m.preprocess_image([{"image": self.wrapper._bgr(images)[0].to(dtype)}])
        features = m.backbone(batch.tensor)
        proposals, _ = m.proposal_generator(batch, features, None)
        boxes = [p.proposal_boxes for p in proposals]
        logits, deltas = head(rh.box_head(rh.box_pooler([features[f] for f in rh.box_in_features], boxes)))
        det, _ = fast_rcnn_inference_single_image(
            head.box2box_transform.apply_deltas(deltas, boxes[0].tensor), logits.softmax(-1),
            batch.image_sizes[0], head.test_score_thresh, head.test_nms_thresh, head.test_topk_per_image)
        det = det[det.pred_boxes.nonempty()]  # what detector_postprocess drops (boxes clipped to nothing)
        mask_logits = rh.mask_head.layers(rh.mask_pooler([features[f] for f in rh.mask_in_features],
                                                         [det.pred_boxes]))
        if mask_logits.shape[1] > 1:  # one map per class: the detected class's
            index = det.pred_classes.view(-1, 1, 1, 1).expand(-1, 1, *mask_logits.shape[2:])
            mask_logits = mask_logits.gather(1, index)
        return det.pred_boxes.tensor, det.scores, det.pred_classes, mask_logits[:, 0].sigmoid()


GRAPHS = {"rtmdet-ins": RTMDetInsGraph, "solov2": SOLOv2Graph, "maskrcnn": MaskRCNNGraph,
          "detectron2-maskrcnn": Detectron2Graph}

__all__ = ["GRAPHS", "OUTPUTS", "Detectron2Graph", "MaskRCNNGraph", "RTMDetInsGraph", "SOLOv2Graph"]
