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
from typing import Any, Sequence

from instseg.contract import PredictConfig, TrainResult, WeightsInfo
from instseg.errors import WeightsError
from instseg.rundir import RunDir

ARCHITECTURE = "detectron2-maskrcnn"
INSTALL_HINT = ("detectron2 is not installed (it has no wheel); build it from source: pip install "
                "'setuptools>=77.0.3,<81' wheel ninja && pip install --no-build-isolation "
                "'git+https://github.com/facebookresearch/detectron2.git'")


class Detectron2Backend:
    name = "detectron2"

    def available(self) -> str | None:
        """None when detectron2 and its compiled ops are importable (found, not imported)."""
        try:
            found = importlib.util.find_spec("detectron2") is not None
        except (ImportError, ValueError):
            found = False
        return None if found else INSTALL_HINT

    # ------------------------------------------------------------------------------------------ training
    def train(self, cfg, run: RunDir) -> TrainResult:
        """instseg's engine (``instseg.engine.trainer.train``): the same loop as every engine-trained model.
        ``cfg.weights`` may be a Detectron2 file: the builder loads it (see ``engine.setup.build_for_run``)."""
        from instseg.engine.trainer import train as engine_train

        return engine_train(cfg, run)

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

    # ------------------------------------------------------------------------------------------- weights
    def owns(self, weights: Path) -> bool:
        """A Detectron2 ``model_final.pth`` / zoo ``.pkl`` (its pickle's strings hold ``backbone.bottom_up.``,
        ``proposal_generator.`` and ``roi_heads.`` keys). instseg's own checkpoints are the engine's."""
        from instseg.models.detectron2.weights import is_detectron2_file

        return is_detectron2_file(Path(weights))

    def describe(self, weights: Path, cfg: PredictConfig | None = None) -> WeightsInfo:
        """Size (from the layout), class count and names of a Detectron2 file, or of an instseg checkpoint of
        this architecture; ``cfg`` supplies what the file lacks (names, imgsz)."""
        from instseg.models.detectron2.weights import guess_size, load_state_dict, num_classes_of

        cfg = cfg or PredictConfig()
        weights = Path(weights)
        if not self.owns(weights):
            from instseg.engine.checkpoint import load_checkpoint

            ckpt = load_checkpoint(weights)
            return WeightsInfo(backend=self.name, architecture=ckpt["architecture"], model=ckpt["size"],
                               names=list(ckpt["names"]), imgsz=cfg.imgsz or ckpt.get("imgsz"), kind="instseg")
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
                           imgsz=cfg.imgsz, kind="detectron2", extra={"num_classes": nc})

    def _model(self, weights: Path, cfg: PredictConfig, device):
        """(model in eval mode on ``device``, names, imgsz, mask_stride) for a Detectron2 file or an instseg
        checkpoint of this architecture."""
        from instseg.models.registry import get_architecture, get_size

        info = self.describe(weights, cfg)
        stride = get_architecture(ARCHITECTURE).mask_stride
        if info.kind == "instseg":
            from instseg.engine.predict import load_trained_model

            model, ckpt, imgsz = load_trained_model(weights, device, cfg.imgsz)
            return model, list(ckpt["names"]), imgsz, stride
        from instseg.models.detectron2.model import build_detectron2_maskrcnn

        imgsz = int(info.imgsz or get_size(ARCHITECTURE, info.model).default_imgsz)
        model = build_detectron2_maskrcnn(info.model, len(info.names), imgsz=imgsz, pretrained=Path(weights),
                                          nms_iou=cfg.iou, log=lambda _m: None)
        return model.to(device).eval(), info.names, imgsz, stride

    # -------------------------------------------------------------------------------- predict / evaluate
    def predict(self, weights: Path, images: Sequence[Path], cfg: PredictConfig) -> list:
        from instseg.engine.distributed import DistInfo, select_device
        from instseg.engine.predict import _records
        from instseg.engine.validate import make_loader, predict_loader

        device = select_device(cfg.device, DistInfo())
        model, _names, imgsz, stride = self._model(weights, cfg, device)
        loader = make_loader(_records(images), imgsz=imgsz, mask_stride=stride, batch=cfg.batch)
        return predict_loader(model, loader, device, conf=cfg.conf, max_det=cfg.max_det,
                              mask_threshold=cfg.mask_threshold)

    def evaluate(self, weights: Path, records: list, cfg: PredictConfig, out: Path | None = None) -> dict:
        from instseg.engine.distributed import DistInfo, select_device
        from instseg.engine.validate import validate
        from instseg.evaluation import write_results_json

        device = select_device(cfg.device, DistInfo())
        model, names, imgsz, stride = self._model(weights, cfg, device)
        metrics, _m, results = validate(model, records, names, imgsz=imgsz, mask_stride=stride, batch=cfg.batch,
                                        device=device, conf=cfg.conf, max_det=cfg.max_det)
        if out is not None:
            write_results_json(out, results)
        return metrics


def _default_names(nc: int) -> list[str]:
    """COCO's 80 thing classes for a COCO-trained file (Detectron2's own list), else class0..class{n-1}."""
    if nc == 80:
        from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

        return [c["name"] for c in COCO_CATEGORIES if c["isthing"]]
    return [f"class{i}" for i in range(nc)]


BACKEND = Detectron2Backend()

# the module-level functions of the backend-module convention that engine/api.py calls today
available, train, predict = BACKEND.available, BACKEND.train, BACKEND.predict

__all__ = ["BACKEND", "Detectron2Backend", "ARCHITECTURE", "INSTALL_HINT", "available", "train", "predict"]
