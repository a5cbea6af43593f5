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
=============  ==================================================================================
"""

from __future__ import annotations

import torch
from torch import nn

OUTPUTS = {
    "rtmdet-ins": ["scores", "dists", "kernels", "mask_feat"],
    "solov2": ["probs", "kernels", "mask_feat"],
    "maskrcnn": ["boxes", "scores", "labels", "masks"],
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


GRAPHS = {"rtmdet-ins": RTMDetInsGraph, "solov2": SOLOv2Graph, "maskrcnn": MaskRCNNGraph}

__all__ = ["GRAPHS", "OUTPUTS", "MaskRCNNGraph", "RTMDetInsGraph", "SOLOv2Graph"]
