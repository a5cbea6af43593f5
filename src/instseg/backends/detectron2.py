"""The Detectron2 backend: Detectron2's Mask R-CNN (``instseg.models.detectron2``) trained and run by
instseg's engine, like the torchvision backend. What this module adds is Detectron2's own files:
``--weights model_final.pth`` / zoo ``.pkl`` for ``predict`` / ``eval`` (recognised by :meth:`owns` without
unpickling) and the Detectron2 cfg keys instseg sets (:meth:`resolved_args`, ``train --dry-run``).

Detectron2 has no wheel: it is built from its repository (``INSTALL_HINT``). Nothing of it is imported
until a model is built.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from instseg.backends.engine_trained import EngineTrainedBackend
from instseg.contract import PredictConfig, WeightsInfo
from instseg.errors import WeightsError

ARCHITECTURE = "detectron2-maskrcnn"
INSTALL_HINT = ("detectron2 is not installed (it has no wheel); build it from source: pip install "
                "'setuptools>=77.0.3,<81' wheel ninja && pip install --no-build-isolation "
                "'git+https://github.com/facebookresearch/detectron2.git'")


class Detectron2Backend(EngineTrainedBackend):
    """Engine-trained (train, resume, predict and evaluate are the shared ones); adds Detectron2's own files
    and the cfg keys instseg sets."""

    name = "detectron2"
    requires = ("detectron2",)
    install_hint = INSTALL_HINT
    foreign_kind = "detectron2"

    def available(self) -> str | None:
        """None when detectron2 is importable (found, not imported)."""
        try:
            found = importlib.util.find_spec("detectron2") is not None
        except (ImportError, ValueError):
            found = False
        return None if found else INSTALL_HINT

    def resolved_args(self, cfg) -> dict[str, Any]:
        """The Detectron2 cfg keys instseg sets on the size's zoo config (everything else is the zoo's)."""
        from instseg.engine.distributed import DistInfo, select_device
        from instseg.engine.setup import dataset_names, with_defaults
        from instseg.models.detectron2.config import ZOO_FREEZE_AT, cfg_overrides, get_size

        cfg = with_defaults(cfg)
        nc = len(dataset_names(cfg.data)) if cfg.data is not None else 80
        upstream = cfg.pretrained or (cfg.weights is not None and self.owns(cfg.weights))  # the builder's rule
        freeze_at = cfg.freeze if cfg.freeze else (ZOO_FREEZE_AT if upstream else 0)
        size = get_size(cfg.model)
        out: dict[str, Any] = {"_BASE_": f"detectron2 model_zoo.get_config({size.config!r})"}
        keys = cfg_overrides(nc, imgsz=cfg.imgsz, device=str(select_device(cfg.device, DistInfo())),
                             freeze_at=freeze_at, max_det=cfg.max_det)
        out.update({k: list(v) if isinstance(v, tuple) else v for k, v in keys.items()})
        if cfg.pretrained:
            out["MODEL.WEIGHTS"] = size.url
        elif cfg.weights is not None:
            out["MODEL.WEIGHTS"] = str(cfg.weights)
        out["SOLVER.IMS_PER_BATCH"] = cfg.batch  # the loop is instseg's: its schedule, not SOLVER.*
        return out

    def owns(self, weights: Path) -> bool:
        """An instseg checkpoint of detectron2-maskrcnn, or a Detectron2 ``model_final.pth`` / zoo ``.pkl``
        (its pickle's strings hold ``backbone.bottom_up.``, ``proposal_generator.`` and ``roi_heads.`` keys)."""
        from instseg.models.detectron2.weights import is_detectron2_file

        return super().owns(weights) or is_detectron2_file(Path(weights))

    def _describe_foreign(self, weights: Path, summary, cfg: PredictConfig) -> WeightsInfo:
        """Size (from the layout), class count and names of a Detectron2 file; ``cfg`` supplies the names."""
        from instseg.models.detectron2.weights import guess_size, load_state_dict, num_classes_of
        from instseg.models.registry import get_size

        state = load_state_dict(weights)
        size = guess_size(state)
        if cfg.model and cfg.model != size:
            raise WeightsError(f"{weights}: has the layout of {size}, not --model {cfg.model}")
        nc = num_classes_of(state)
        if nc is None:
            raise WeightsError(f"{weights}: has no roi_heads.box_predictor (not a Mask R-CNN file)")
        names = list(cfg.names) if cfg.names else _default_names(nc)
        if len(names) != nc:
            raise WeightsError(f"{weights}: predicts {nc} classes but {len(names)} names were given "
                               "(--names / --data must list the classes it was trained on)")
        return WeightsInfo(backend=self.name, architecture=ARCHITECTURE, model=size, names=names,
                           imgsz=cfg.imgsz or get_size(ARCHITECTURE, size).default_imgsz, kind="detectron2",
                           extra={"num_classes": nc})

    def describe(self, weights: Path, cfg: PredictConfig | None = None) -> WeightsInfo:
        from instseg.models.detectron2.weights import is_detectron2_file

        cfg = cfg or PredictConfig()
        if is_detectron2_file(Path(weights)):
            return self._describe_foreign(Path(weights), None, cfg)
        return super().describe(weights, cfg)


def _default_names(nc: int) -> list[str]:
    """COCO's 80 thing classes for a COCO-trained file (Detectron2's own list), else class0..class{n-1}."""
    if nc == 80:
        from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

        return [c["name"] for c in COCO_CATEGORIES if c["isthing"]]
    return [f"class{i}" for i in range(nc)]


BACKEND = Detectron2Backend()

__all__ = ["BACKEND", "Detectron2Backend", "ARCHITECTURE", "INSTALL_HINT"]
