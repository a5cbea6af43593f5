"""The backend of the architectures implemented inside instseg (SOLOv2, RTMDet-Ins), trained and run by
instseg's engine. It also reads MMDetection's own checkpoints of these families (model zoo files or a
user's MMDetection run: ``{"meta", "state_dict"}`` with MMDetection's key names, which the native modules
share)."""

from __future__ import annotations

from pathlib import Path

from instseg.backends.engine_trained import EngineTrainedBackend
from instseg.sniff import PickleSummary

# a parameter name only that family's MMDetection head has -> the architecture
MMDET_MARKERS = {"bbox_head.rtm_kernel.": "rtmdet-ins", "mask_head.conv_kernel.": "solov2"}
CLASS_LAYERS = {"rtmdet-ins": "bbox_head.rtm_cls.0.weight", "solov2": "mask_head.conv_cls.weight"}


class NativeBackend(EngineTrainedBackend):
    name = "native"
    foreign_kind = "mmdet"

    def foreign_architecture(self, summary: PickleSummary) -> str | None:
        for prefix, arch in MMDET_MARKERS.items():
            if summary.has_prefix(prefix) or summary.has_prefix("module." + prefix):
                return arch
        return None

    def foreign_classes(self, state: dict) -> int:
        for key in CLASS_LAYERS.values():
            if key in state:
                return int(state[key].shape[0])
        return 0

    def foreign_names(self, weights: Path) -> list[str] | None:
        """``meta.dataset_meta.classes`` of an MMDetection 3.x checkpoint (mmengine writes it)."""
        import torch

        try:
            obj = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception:
            return None
        classes = ((obj.get("meta") or {}).get("dataset_meta") or {}).get("classes") if isinstance(obj, dict) else None
        return [str(c) for c in classes] if isinstance(classes, (list, tuple)) and classes else None


BACKEND = NativeBackend()

__all__ = ["BACKEND", "NativeBackend", "MMDET_MARKERS"]
