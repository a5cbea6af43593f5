"""The torchvision backend: Mask R-CNN (``instseg.models.maskrcnn``) trained and run by instseg's engine.
It also reads a plain torchvision ``MaskRCNN.state_dict()`` (``torch.save(model.state_dict(), f)``) and the
``{"model": state_dict}`` files of torchvision's ``references/detection`` scripts."""

from __future__ import annotations

from instseg.backends.engine_trained import EngineTrainedBackend
from instseg.sniff import PickleSummary

MASK_LOGITS = "roi_heads.mask_predictor.mask_fcn_logits.weight"


class TorchvisionBackend(EngineTrainedBackend):
    name = "torchvision"
    requires = ("torchvision",)
    install_hint = "torchvision is not installed: pip install torchvision"
    foreign_kind = "torchvision"
    foreign_prefix = "model."  # instseg's MaskRCNNModel holds torchvision's MaskRCNN as .model

    def foreign_architecture(self, summary: PickleSummary) -> str | None:
        if MASK_LOGITS in summary.strings and summary.has_prefix("backbone.body."):
            return "maskrcnn"
        return None

    def foreign_classes(self, state: dict) -> int:
        return int(state[MASK_LOGITS].shape[0]) - 1  # torchvision counts the background class


BACKEND = TorchvisionBackend()

__all__ = ["BACKEND", "TorchvisionBackend"]
