"""A tiny but real model that implements instseg's model contract, so engine tests run in seconds.

Per-pixel class logits at stride 4 (two strided convs); loss = BCE + dice against the union of each class's
target masks; ``predict`` returns one instance per class whose probability map has pixels above 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinySeg(nn.Module):
    mask_stride = 4

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Conv2d(8, num_classes, 1)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images.float() / 255.0 - 0.5))

    def forward_train(self, images, targets):
        logits = self.logits(images)
        sem = torch.zeros_like(logits)
        for b, t in enumerate(targets):
            for label, mask in zip(t["labels"].tolist(), t["masks"]):
                sem[b, label] = torch.maximum(sem[b, label], mask.float()[: sem.shape[2], : sem.shape[3]])
        p = logits.sigmoid()
        dice = 1 - (2 * (p * sem).sum((2, 3)) + 1) / (p.sum((2, 3)) + sem.sum((2, 3)) + 1)
        return {"loss_bce": F.binary_cross_entropy_with_logits(logits, sem), "loss_dice": dice.mean()}

    def predict(self, images, score_thr: float, max_det: int):
        h, w = images.shape[-2:]
        probs = F.interpolate(self.logits(images).sigmoid(), size=(h, w), mode="bilinear", align_corners=False)
        out = []
        for p in probs:
            boxes, scores, labels, masks = [], [], [], []
            for c in range(self.num_classes):
                m = p[c] > 0.5
                if not m.any():
                    continue
                ys, xs = torch.nonzero(m, as_tuple=True)
                score = float(p[c][m].mean())
                if score < score_thr:
                    continue
                boxes.append(torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float())
                scores.append(score)
                labels.append(c)
                masks.append(p[c])
            k = min(len(scores), max_det)
            out.append({"boxes": torch.stack(boxes[:k]) if k else torch.zeros((0, 4)),
                        "scores": torch.tensor(scores[:k]), "labels": torch.tensor(labels[:k], dtype=torch.int64),
                        "masks": torch.stack(masks[:k]) if k else torch.zeros((0, h, w))})
        return out


def build_tiny(size: str, num_classes: int, **_):
    return TinySeg(num_classes)
