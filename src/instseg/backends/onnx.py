"""The ``onnx`` backend: predict and evaluate with a ``.onnx`` written by ``instseg export``, in onnxruntime.

The file says everything about itself in its ``metadata_props`` (``onnx_meta.py``): architecture, size,
class names, imgsz, whether the graph is static, and the post-process parameters. Images are letterboxed by
the same loader the engine validates with (``engine.validate.make_loader``: uint8 RGB, the ``ImageMeta``
inverse mapping), the graph runs in onnxruntime, ``onnx_post.py`` (numpy) turns its raw outputs into
detections, and ``engine.validate.to_image_prediction`` maps them back to the original image and encodes
RLE, exactly as for a ``.pt``. YOLO-seg files go through Ultralytics' AutoBackend (its own preprocessing
and NMS, run in onnxruntime), as the ``.pt`` goes through Ultralytics.

onnxruntime is the optional extra ``pip install 'instseg[export]'``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

from instseg.contract import PredictConfig, RunDir, TrainResult, WeightsInfo
from instseg.errors import BackendUnavailable, InstsegError, WeightsError

INSTALL_HINT = "onnxruntime is not installed: pip install 'instseg[export]'"


def make_session(path: Path, device: str = ""):
    """An onnxruntime InferenceSession of ``path``: CUDA first when ``device`` is not "cpu" and this
    onnxruntime build has it, else the CPU provider."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # quiet about the data-dependent detection count of Mask R-CNN graphs
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # InvalidGraph, NOT_IMPLEMENTED (an FP16 graph on the CPU provider), ...
        raise WeightsError(f"{path}: onnxruntime cannot load it ({type(e).__name__}: {str(e)[:200]}); an FP16 "
                           "(--half) graph needs onnxruntime-gpu and a CUDA device") from e


def read_metadata(weights: Path) -> dict:
    """The instseg metadata of ``weights``; WeightsError when it is not an ONNX file or has none."""
    from instseg.backends.onnx_meta import instseg_metadata, read_metadata_props

    weights = Path(weights)
    if not weights.is_file():
        raise WeightsError(f"{weights}: file not found")
    try:
        props = read_metadata_props(weights)
    except (OSError, ValueError) as e:
        raise WeightsError(f"{weights}: not a readable ONNX model ({e})") from e
    meta = instseg_metadata(props)
    if "architecture" not in meta or "names" not in meta:
        raise WeightsError(f"{weights}: an ONNX file without instseg metadata (metadata_props 'instseg.*'; "
                           f"it has {sorted(props)[:6] or 'none'}); instseg predicts only with files it exported: "
                           "run `instseg export --weights best.pt` on the checkpoint")
    return meta


def check_imgsz(weights: Path, meta: dict, imgsz: int | None) -> int:
    """The input size to letterbox to: ``imgsz`` or the exported one; a static graph takes only its own."""
    size = int(imgsz or meta["imgsz"])
    if not meta.get("dynamic") and size != int(meta["imgsz"]):
        raise WeightsError(f"{weights}: a static graph exported at imgsz {meta['imgsz']}; --imgsz {size} does not "
                           f"fit it. Omit --imgsz (or pass {meta['imgsz']}), or re-export with "
                           f"`instseg export --weights {meta.get('source', 'best.pt')} --imgsz {size}` (or --dynamic)")
    if size < 32 or size % 32:
        raise WeightsError(f"--imgsz {size}: the graph needs a positive multiple of 32")
    return size


class OnnxBackend:
    name = "onnx"

    def available(self) -> str | None:
        return None if importlib.util.find_spec("onnxruntime") is not None else INSTALL_HINT

    def _require(self) -> None:
        why = self.available()
        if why:
            raise BackendUnavailable(why)

    def owns(self, weights: Path) -> bool:
        """Every ``.onnx`` file: a foreign one is then refused with a message naming `instseg export`."""
        return Path(weights).suffix.lower() == ".onnx" and Path(weights).is_file()

    def describe(self, weights: Path, cfg: PredictConfig | None = None) -> WeightsInfo:
        meta = read_metadata(weights)
        return WeightsInfo(backend=self.name, architecture=meta["architecture"], model=meta.get("model"),
                           names=list(meta["names"]), imgsz=meta.get("imgsz"), kind="onnx", extra=meta)

    def resolved_args(self, cfg) -> dict[str, Any]:
        return {}

    def train(self, cfg, run: RunDir) -> TrainResult:
        raise InstsegError("an exported .onnx cannot be trained; train (or --resume) the .pt it was exported "
                           "from, then export again")

    def resume_config(self, last: Path, epochs: int | None = None, force: bool = False):
        raise InstsegError(f"{last}: an exported .onnx holds no training state; --resume the run's "
                           "weights/last.pt instead")

    def predict(self, weights: Path, images: Sequence[Path], cfg: PredictConfig) -> list:
        from instseg.engine.predict import _records

        return self._predict_records(Path(weights), _records(images), cfg)

    def predictor(self, weights: Path, cfg: PredictConfig):
        """The session (or Ultralytics' AutoBackend) made once; each call predicts a list of image files."""
        from dataclasses import replace

        from instseg.engine.predict import _records

        self._require()
        weights = Path(weights)
        meta = read_metadata(weights)
        imgsz = check_imgsz(weights, meta, cfg.imgsz)
        if meta.get("kind") == "ultralytics":
            from instseg.backends import ultralytics as ub

            why = ub.available()
            if why:
                raise BackendUnavailable(f"{weights} is a YOLO export, run by Ultralytics' AutoBackend; {why}")
            batch = cfg.batch if self.describe(weights).extra.get("dynamic") else 1
            return ub.predictor(weights, replace(cfg, imgsz=imgsz, batch=batch))
        sess = make_session(weights, cfg.device)
        return lambda images: predict_onnx(weights, meta, _records(images), cfg, imgsz, sess=sess)

    def _predict_records(self, weights: Path, records: list, cfg: PredictConfig) -> list:
        self._require()
        meta = read_metadata(weights)
        imgsz = check_imgsz(weights, meta, cfg.imgsz)
        if meta.get("kind") == "ultralytics":
            return self._predict_yolo(weights, records, cfg, imgsz)
        return predict_onnx(weights, meta, records, cfg, imgsz)

    def _predict_yolo(self, weights: Path, records: list, cfg: PredictConfig, imgsz: int) -> list:
        from dataclasses import replace

        from instseg.backends import ultralytics as ub

        why = ub.available()
        if why:
            raise BackendUnavailable(f"{weights} is a YOLO export, run by Ultralytics' AutoBackend; {why}")
        batch = cfg.batch if self.describe(weights).extra.get("dynamic") else 1
        preds = ub.predict(weights, [r.path for r in records], replace(cfg, imgsz=imgsz, batch=batch))
        for record, pred in zip(records, preds):
            pred.image_id = record.image_id
        return preds

    def evaluate(self, weights: Path, records: list, cfg: PredictConfig, out: Path | None = None) -> dict:
        """COCO metrics of the exported model on ``records`` with instseg's evaluator (and ground truth
        made from the same records, as for a ``.pt``)."""
        from instseg.engine.validate import ground_truth
        from instseg.evaluation import evaluate, predictions_to_coco_results, write_results_json

        names = read_metadata(weights)["names"]
        gt, records = ground_truth(records, names)
        preds = self._predict_records(Path(weights), records, cfg)
        results = predictions_to_coco_results(preds, [c["id"] for c in gt["categories"]])
        if out is not None:
            write_results_json(out, results)
        return evaluate(gt, results).to_dict()


def predict_onnx(weights: Path, meta: dict, records: list, cfg: PredictConfig, imgsz: int, sess=None) -> list:
    """ImagePredictions (original size, RLE) of an instseg-native or torchvision graph for ``records``
    (``sess``: an onnxruntime session of ``weights`` made earlier, else one is made here)."""
    import numpy as np
    import torch

    from instseg.backends.onnx_post import IN_GRAPH_NMS, POSTPROCESS
    from instseg.engine.validate import make_loader, to_image_prediction

    arch = meta["architecture"]
    if arch not in POSTPROCESS:
        raise WeightsError(f"{weights}: architecture {arch!r} has no instseg post-process (known: "
                           f"{', '.join(POSTPROCESS)}); was it exported by a newer instseg?")
    params = meta.get("postprocess", {})
    if arch in IN_GRAPH_NMS:
        if cfg.max_det > int(params.get("max_det", 100)) or cfg.conf < float(params.get("score_thr", 0.0)):
            raise WeightsError(f"{weights}: the {arch} graph keeps at most {params.get('max_det')} detections "
                               f"scored above {params.get('score_thr')} (its post-processing is inside the graph); "
                               f"--max-det {cfg.max_det} --conf {cfg.conf} asks for more: re-export with "
                               f"--max-det {cfg.max_det}")
    batch = max(1, cfg.batch) if meta.get("dynamic") and arch not in IN_GRAPH_NMS else 1
    sess = sess or make_session(weights, cfg.device)
    post = POSTPROCESS[arch]
    loader = make_loader(records, imgsz=imgsz, mask_stride=int(meta.get("mask_stride", 4)), batch=batch)
    preds = []
    for images, _targets, metas in loader:
        hw = (int(images.shape[-2]), int(images.shape[-1]))
        outs = sess.run(None, {"images": images.numpy()})
        for i, m in enumerate(metas):
            per_image = outs if arch in IN_GRAPH_NMS else [o[i] for o in outs]
            det = post(*per_image, hw, params, conf=cfg.conf, max_det=cfg.max_det)
            det = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in det.items()}
            preds.append(to_image_prediction(det, m, cfg.mask_threshold))
    return preds


BACKEND = OnnxBackend()


def available() -> str | None:  # the module-level functions of the pre-contract backends, for api.py
    return BACKEND.available()


__all__ = ["BACKEND", "INSTALL_HINT", "OnnxBackend", "check_imgsz", "make_session", "predict_onnx",
           "read_metadata"]
