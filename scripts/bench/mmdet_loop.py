"""MMDetection's own training / test loop on a COCO dataset, timed per epoch: the reference side of
bench_train_loop.py and bench_val.py. Runs in the MMDetection scratch environment (DEVELOPERS.md), with
``PYTHONPATH=src:scripts`` so the model configs come from the same helpers as the equivalence scripts:

    train: mmengine ``Runner`` built from the architecture's packaged MMDetection config (its pipeline with the
           image sizes scaled to --imgsz, its optimizer, schedule and hooks: EMA, checkpoint every epoch),
           datasets replaced by the given COCO files; ``runner.train()`` with validation every epoch.
    val:   the same config's test loop (``runner.test()``) on --weights (a ``{"state_dict": ...}`` file whose
           keys are MMDetection's: instseg's native models share them), CocoMetric segm + bbox.

Writes --out (JSON): per epoch ``train_s``, ``val_s``, ``n_train``; for val: ``test_s``, ``forward_s`` (backbone,
neck and head forward, post-processing excluded), ``metric_s`` (CocoMetric), ``n_images``, metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

RTMDET_FILES = {"tiny": "rtmdet-ins_tiny_8xb32-300e_coco.py", "s": "rtmdet-ins_s_8xb32-300e_coco.py",
                "m": "rtmdet-ins_m_8xb32-300e_coco.py", "l": "rtmdet-ins_l_8xb32-300e_coco.py",
                "x": "rtmdet-ins_x_8xb16-300e_coco.py"}
SOLO_BASE = "solov2-light_r50_fpn_ms-3x_coco.py"


def _scaled(node, imgsz: int):
    """The pipeline with RTMDet's 640 / 1280 sizes replaced by imgsz / 2*imgsz."""
    if isinstance(node, dict):
        return {k: _scaled(v, imgsz) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        vals = [_scaled(v, imgsz) for v in node]
        if len(vals) == 2 and all(isinstance(v, int) for v in vals):
            vals = [imgsz if v == 640 else 2 * imgsz if v == 1280 else v for v in vals]
        return type(node)(vals) if isinstance(node, tuple) else vals
    return node


def _solo_pipeline(pipeline: list, imgsz: int) -> list:
    """SOLOv2-light's multi-scale resize (852 x 352..512) -> one resize to fit imgsz x imgsz."""
    out = []
    for t in pipeline:
        t = dict(t)
        if t["type"] in ("RandomChoiceResize", "Resize", "RandomResize"):
            t = {"type": "Resize", "scale": (imgsz, imgsz), "keep_ratio": True}
        out.append(t)
    return out


def build_cfg(a):
    import mmdet
    from mmengine.config import Config, ConfigDict

    configs = Path(mmdet.__file__).parent / ".mim" / "configs"
    if a.arch == "rtmdet-ins":
        from mmdet_rtmdet_ins_env import _to_bn

        cfg = Config.fromfile(str(configs / "rtmdet" / RTMDET_FILES[a.model]))
        model = cfg.model.to_dict()
        _to_bn(model)
        model["backbone"].pop("init_cfg", None)
        model["bbox_head"]["num_classes"] = len(a.names)
        train_pipeline = _scaled(cfg.train_dataloader.dataset.pipeline, a.imgsz)
        test_pipeline = _scaled(cfg.test_dataloader.dataset.pipeline, a.imgsz)
        cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=a.epochs, val_interval=1)
    else:
        from compare_mmdet_solov2 import mmdet_model_cfg

        cfg = Config.fromfile(str(configs / "solov2" / SOLO_BASE))
        model = mmdet_model_cfg(a.model).to_dict()
        model["mask_head"]["num_classes"] = len(a.names)
        train_pipeline = _solo_pipeline(cfg.train_dataloader.dataset.pipeline, a.imgsz)
        test_pipeline = _solo_pipeline(cfg.test_dataloader.dataset.pipeline, a.imgsz)
        cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=a.epochs, val_interval=1)
    if a.arch == "rtmdet-ins":  # the threshold instseg's validation uses (theirs: 0.05); SOLOv2 keeps its
        model["test_cfg"]["score_thr"] = a.conf  # test_cfg: instseg applies MMDetection's, the conf only tightens
    cfg.model = ConfigDict(model)
    meta = dict(classes=tuple(a.names))

    def dataset(ann, images_dir, pipeline, train):
        d = dict(type="CocoDataset", data_root="", ann_file=str(ann), data_prefix=dict(img=str(images_dir) + "/"),
                 metainfo=meta, pipeline=pipeline, backend_args=None)
        if train:
            d["filter_cfg"] = dict(filter_empty_gt=True, min_size=32)
        else:
            d["test_mode"] = True
        return d

    def loader(ds, train):
        return dict(batch_size=a.batch, num_workers=a.workers, persistent_workers=a.workers > 0,
                    drop_last=False, pin_memory=False,
                    sampler=dict(type="DefaultSampler", shuffle=train), dataset=ds)

    if a.mode == "train":
        cfg.train_dataloader = loader(dataset(a.train_json, a.train_images, train_pipeline, True), True)
        cfg.train_dataloader["batch_sampler"] = None
    else:
        cfg.train_dataloader = None
        cfg.train_cfg = None
        cfg.optim_wrapper = None
        cfg.param_scheduler = None
    val = loader(dataset(a.val_json, a.val_images, test_pipeline, False), False)
    cfg.val_dataloader = val
    cfg.test_dataloader = val
    metric = dict(type="CocoMetric", ann_file=str(a.val_json), metric=["bbox", "segm"], format_only=False,
                  backend_args=None)
    cfg.val_evaluator = metric
    cfg.test_evaluator = metric
    if a.mode == "val":
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=1, max_keep_ckpts=2)
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=50)
    if a.amp and cfg.get("optim_wrapper"):
        cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.work_dir = str(a.work_dir)
    cfg.load_from = str(a.weights) if a.weights else None
    cfg.resume = False
    cfg.launcher = "none"
    cfg.randomness = dict(seed=a.seed)
    cfg.log_level = "WARNING"
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=16)
    cfg.custom_hooks = [h for h in cfg.get("custom_hooks", []) if h["type"] != "PipelineSwitchHook"]
    cfg.custom_hooks.append(dict(type="LoopTimer", out=str(a.out)))
    cfg.visualizer = dict(type="DetLocalVisualizer", vis_backends=[dict(type="LocalVisBackend")], name="vis")
    return cfg


def register_timer():
    from mmengine.hooks import Hook
    from mmdet.registry import HOOKS

    @HOOKS.register_module(force=True)
    class LoopTimer(Hook):
        priority = "LOWEST"

        def __init__(self, out):
            self.out, self.epochs, self.test = Path(out), [], {}

        def _dump(self):
            self.out.write_text(json.dumps({"epochs": self.epochs, **self.test}, indent=1))

        def before_train_epoch(self, runner):
            self.t = time.perf_counter()

        def after_train_epoch(self, runner):  # after the CheckpointHook (higher priority): includes its write
            self.epochs.append({"train_s": time.perf_counter() - self.t,
                                "n_train": len(runner.train_dataloader.dataset)})

        def before_val_epoch(self, runner):
            self.tv = time.perf_counter()

        def after_val_epoch(self, runner, metrics=None):
            self.epochs[-1]["val_s"] = time.perf_counter() - self.tv
            self.epochs[-1]["segm_mAP"] = (metrics or {}).get("coco/segm_mAP")
            self._dump()

        def before_test_epoch(self, runner):
            self.tt = time.perf_counter()

        def after_test_epoch(self, runner, metrics=None):
            self.test.update(test_s=time.perf_counter() - self.tt, n_images=len(runner.test_dataloader.dataset),
                             segm_mAP=(metrics or {}).get("coco/segm_mAP"))
            self._dump()

    return LoopTimer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["train", "val"])
    p.add_argument("--arch", choices=["rtmdet-ins", "solov2"], required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--names", nargs="+", required=True)
    p.add_argument("--train-json", type=Path)
    p.add_argument("--train-images", type=Path)
    p.add_argument("--val-json", type=Path, required=True)
    p.add_argument("--val-images", type=Path, required=True)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--weights", type=Path)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--conf", type=float, default=0.001, help="test_cfg.score_thr")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--work-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("mmengine").setLevel(logging.ERROR)
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from mmdet.utils import register_all_modules
    from mmengine.runner import Runner

    register_all_modules()
    register_timer()
    runner = Runner.from_cfg(build_cfg(a))
    if a.mode == "train":
        runner.train()
        return
    model = runner.model
    head = model.bbox_head if a.arch == "rtmdet-ins" else model.mask_head
    spent = {"forward_s": 0.0, "metric_s": 0.0}

    def timed(fn, key):
        def wrapper(*args, **kw):
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[key] += time.perf_counter() - t
        return wrapper

    model.extract_feat = timed(model.extract_feat, "forward_s")
    head.forward = timed(head.forward, "forward_s")
    for m in runner.test_evaluator.metrics:
        m.compute_metrics = timed(m.compute_metrics, "metric_s")
    runner.test()
    res = json.loads(a.out.read_text())
    a.out.write_text(json.dumps({**res, **spent}, indent=1))


if __name__ == "__main__":
    main()
