"""The SOLOv2 nn.Module (instseg's model contract): ResNet backbone, FPN neck, SOLOv2 head.

Top-level names ``backbone``, ``neck``, ``mask_head`` are MMDetection's, so an MMDetection SOLOv2
``state_dict`` maps key for key. Input: uint8 RGB [B, 3, H, W]; the model normalizes with MMDetection's
mean/std in RGB order (MMDetection loads BGR and its preprocessor swaps to RGB, so the network sees the same
tensor) and zero-pads the normalized image at the bottom/right to a multiple of 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from instseg.models.solov2.backbone import ResNet
from instseg.models.solov2.config import Solov2Config, Solov2TestConfig
from instseg.models.solov2.head import SOLOV2Head
from instseg.models.solov2.losses import solov2_loss
from instseg.models.solov2.neck import FPN
from instseg.models.solov2.postprocess import decode_image, point_nms

MEAN_RGB = (123.675, 116.28, 103.53)
STD_RGB = (58.395, 57.12, 57.375)
PAD_DIVISOR = 32


class SOLOv2(nn.Module):
    """SOLOv2 with ``num_classes`` categories; ``mask_stride`` = 4 (target masks at 1/4 input size)."""

    mask_stride = 4

    def __init__(self, cfg: Solov2Config, num_classes: int, *, frozen_stages: int = -1, norm_eval: bool = False,
                 test_cfg: Solov2TestConfig | None = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.cfg = cfg
        self.num_classes = num_classes
        self.test_cfg = test_cfg or Solov2TestConfig()
        self.backbone = ResNet(cfg.depth, frozen_stages=frozen_stages, norm_eval=norm_eval)
        self.neck = FPN(cfg.backbone_channels, cfg.fpn_channels)
        self.mask_head = SOLOV2Head(num_classes, cfg)
        self.register_buffer("pixel_mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(STD_RGB).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [B,3,H,W] -> normalized float, zero-padded bottom/right to multiples of 32."""
        x = (images.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std  # fp16 when exported --half
        h, w = x.shape[-2:]
        ph, pw = (-h) % PAD_DIVISOR, (-w) % PAD_DIVISOR
        return F.pad(x, (0, pw, 0, ph)) if ph or pw else x

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Raw head outputs: (kernels per level [B,E,S,S], category logits per level [B,C,S,S],
        mask features [B,E,Hp/4,Wp/4])."""
        return self.forward_normalized(self.preprocess(images))

    def forward_normalized(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Head outputs for an already normalized and padded float batch."""
        return self.mask_head(self.neck(self.backbone(x)))

    def forward_train(self, images: torch.Tensor, targets: list[dict]) -> dict[str, torch.Tensor]:
        """Scalar losses ``loss_mask`` and ``loss_cls`` (see :func:`solov2_loss`)."""
        kernels, logits, mask_feats = self(images)
        return solov2_loss(kernels, logits, mask_feats, targets, self.cfg, self.num_classes, stride=self.mask_stride)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, score_thr: float = 0.05, max_det: int = 100) -> list[dict]:
        """Per image: "boxes" [K,4] xyxy, "scores" [K], "labels" [K] int64, "masks" [K,H,W] float
        probabilities, all at input resolution (H, W of ``images``)."""
        kernels, logits, mask_feats = self(images)
        probs = [point_nms(lg.sigmoid()) for lg in logits]
        hw = (images.shape[-2], images.shape[-1])
        return [
            decode_image([k[i] for k in kernels], [p[i] for p in probs], mask_feats[i], hw, self.cfg,
                         self.test_cfg, stride=self.mask_stride, score_thr=score_thr, max_det=max_det)
            for i in range(images.shape[0])
        ]
