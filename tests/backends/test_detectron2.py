"""Detectron2 backend: safe file recognition and reading, the cfg keys instseg sets, and (where detectron2 is
installed) fidelity to Detectron2 itself: DefaultPredictor's predictions and SimpleTrainer's losses on the
same weights and inputs, then training / resume / predict / evaluate through instseg's engine."""

from __future__ import annotations

import copy
import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from instseg.backends.detectron2 import BACKEND, INSTALL_HINT
from instseg.contract import Backend, PredictConfig
from instseg.errors import WeightsError
from instseg.models.detectron2 import weights as W
from instseg.models.detectron2.config import SIZES, cfg_overrides

HAS_D2 = importlib.util.find_spec("detectron2") is not None
needs_d2 = pytest.mark.skipif(not HAS_D2, reason=INSTALL_HINT)
D2_KEYS = ("backbone.bottom_up.stem.conv1.weight", "proposal_generator.rpn_head.conv.weight",
           "roi_heads.box_predictor.cls_score.weight")


def _d2_state(kind=torch.ones):
    return {k: kind(2, 3) for k in D2_KEYS}


class _Exploit:
    """Pickles to a call of os.system: loading it with pickle.load would run the command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


# --------------------------------------------------------------------------------- without detectron2
def test_backend_implements_the_contract():
    assert isinstance(BACKEND, Backend) and BACKEND.name == "detectron2"
    assert BACKEND.available() == (None if HAS_D2 else INSTALL_HINT)


def test_owns_detectron2_pth_and_pkl_not_instseg_checkpoints(tmp_path):
    pth = tmp_path / "model_final.pth"
    torch.save({"model": _d2_state(), "iteration": 7}, pth)
    pkl = tmp_path / "model_final_f10217.pkl"
    with open(pkl, "wb") as f:
        pickle.dump({"model": {k: np.ones((2, 3), np.float32) for k in D2_KEYS}, "__author__": "Detectron2 Model Zoo"},
                    f, protocol=2)
    ours = tmp_path / "best.pt"  # an instseg checkpoint of this architecture: the engine's, not Detectron2's
    torch.save({"model": {f"model.{k}": v for k, v in _d2_state().items()}, "architecture": "detectron2-maskrcnn",
                "size": "r50-fpn", "names": ["a"], "instseg_version": "0"}, ours)
    partial = tmp_path / "backbone_only.pth"
    torch.save({"model": {D2_KEYS[0]: torch.ones(1)}}, partial)
    (tmp_path / "junk.pth").write_bytes(b"not a pickle at all")
    assert BACKEND.owns(pth) and BACKEND.owns(pkl)
    assert BACKEND.owns(ours) and not W.is_detectron2_file(ours)  # instseg's own file of this architecture
    assert not BACKEND.owns(partial)
    assert not BACKEND.owns(tmp_path / "junk.pth") and not BACKEND.owns(tmp_path / "missing.pth")


def test_owns_and_load_never_run_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model_final_evil.pkl"
    with open(evil, "wb") as f:
        pickle.dump({"model": {**{k: np.zeros(1) for k in D2_KEYS}, "x": _Exploit(marker)},
                     "__author__": "Detectron2 Model Zoo"}, f, protocol=2)
    assert BACKEND.owns(evil)  # it looks like one (string scan)...
    with pytest.raises(WeightsError, match=r"posix\.system is not allowed"):
        W.load_state_dict(evil)  # ...but reading it refuses the global
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_zoo_pkl_reads_numpy_arrays_as_tensors(tmp_path, protocol):
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal((3, 2)).astype(np.float32) for k in D2_KEYS}
    arrays["pixel_mean"] = np.zeros(3)  # old files carry the (now non-persistent) buffers: ignored
    path = tmp_path / "m.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": arrays, "__author__": "Detectron2 Model Zoo"}, f, protocol=protocol)
    state = W.load_state_dict(path)
    assert sorted(state) == sorted(D2_KEYS)
    for k in D2_KEYS:
        assert isinstance(state[k], torch.Tensor) and torch.equal(state[k], torch.from_numpy(arrays[k]))


def test_not_a_detectron2_state_dict_is_a_weights_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.ones(1)}}, path)
    with pytest.raises(WeightsError, match="other.pth: holds no Detectron2"):
        W.load_state_dict(path)


def test_zoo_download_offline_names_url_and_file(monkeypatch, tmp_path):
    from urllib.error import URLError

    def offline(*a, **k):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    url = SIZES["x101-32x8d-fpn"].url
    with pytest.raises(WeightsError) as e:
        W.zoo_file(url)
    assert url == ("https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/"
                   "mask_rcnn_X_101_32x8d_FPN_3x/139653917/model_final_2d9806.pkl")
    assert url in str(e.value) and str(tmp_path / "hub" / "checkpoints" / "model_final_2d9806.pkl") in str(e.value)
    cached = tmp_path / "hub" / "checkpoints" / "model_final_2d9806.pkl"
    cached.write_bytes(b"x")  # a file already in the cache is used as it is, without the network
    assert W.zoo_file(url) == cached


def test_cfg_overrides_make_detectron2_resize_the_identity():
    keys = cfg_overrides(3, imgsz=512, freeze_at=2, roi_batch=128)
    assert keys["INPUT.MIN_SIZE_TRAIN"] == (512,) and keys["INPUT.MAX_SIZE_TRAIN"] == 512
    assert keys["INPUT.MIN_SIZE_TEST"] == keys["INPUT.MAX_SIZE_TEST"] == 512
    assert keys["MODEL.ROI_HEADS.NUM_CLASSES"] == 3 and keys["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE"] == 128
    assert keys["MODEL.BACKBONE.FREEZE_AT"] == 2 and keys["INPUT.MASK_FORMAT"] == "bitmask"
    with pytest.raises(ValueError, match="freeze=6"):
        cfg_overrides(3, imgsz=512, freeze_at=6)


def test_resolved_args(demo_data):
    from instseg.config import TrainConfig

    cfg = TrainConfig(data=demo_data, architecture="detectron2-maskrcnn", model="x101-32x8d-fpn", imgsz=320,
                      pretrained=True, device="cpu")
    args = BACKEND.resolved_args(cfg)
    assert args["MODEL.ROI_HEADS.NUM_CLASSES"] == 4 and args["MODEL.DEVICE"] == "cpu"
    assert args["INPUT.MIN_SIZE_TEST"] == 320 and args["MODEL.BACKBONE.FREEZE_AT"] == 2  # the zoo default
    assert args["MODEL.WEIGHTS"] == SIZES["x101-32x8d-fpn"].url and args["SOLVER.IMS_PER_BATCH"] == 2
    assert "mask_rcnn_X_101_32x8d_FPN_3x.yaml" in args["_BASE_"]
    from dataclasses import replace

    assert BACKEND.resolved_args(replace(cfg, pretrained=False, freeze=3))["MODEL.BACKBONE.FREEZE_AT"] == 3
    assert BACKEND.resolved_args(replace(cfg, pretrained=False))["MODEL.BACKBONE.FREEZE_AT"] == 0


# ------------------------------------------------------------------------------------ with detectron2
def _square_png(tmp_path: Path, demo_data: Path, size: int, index: int = 0) -> Path:
    """A demo image resized to ``size`` x ``size`` and stored losslessly (both readers decode it alike)."""
    import cv2

    src = sorted((demo_data.parent / "images" / "val").glob("*.jpg"))[index]
    img = cv2.resize(cv2.imread(str(src)), (size, size), interpolation=cv2.INTER_AREA)
    out = tmp_path / f"{src.stem}.png"
    cv2.imwrite(str(out), img)
    return out


def _tame(model):
    """Random init under the zoo's FrozenBN (identity statistics) lets activations grow through every
    residual block until all boxes are the whole image; damping each residual branch (the last norm's scale,
    as zero-init-residual does) keeps features image-dependent."""
    with torch.no_grad():
        for name, module in model.model.backbone.bottom_up.named_modules():
            if name.endswith("conv3"):
                module.norm.weight.mul_(0.1)
    return model


def _biased(size: str, nc: int, imgsz: int, seed: int = 0):
    """A random-init model whose box classifier favours the foreground and whose mask logits sit near 0, so
    that detections with non-empty masks exist."""
    from instseg.models.detectron2 import build_detectron2_maskrcnn

    torch.manual_seed(seed)
    model = _tame(build_detectron2_maskrcnn(size, nc, imgsz=imgsz))
    with torch.no_grad():
        model.model.roi_heads.box_predictor.cls_score.bias[:nc] += 3.0
        model.model.roi_heads.mask_head.predictor.bias += 0.3
    return model.eval()


@needs_d2
@pytest.mark.slow
@pytest.mark.parametrize("size", ["r50-fpn", "r101-fpn",
                                  pytest.param("x101-32x8d-fpn", marks=pytest.mark.stress)])
def test_predictions_equal_detectron2_default_predictor(tmp_path, demo_data, size):
    import cv2
    from detectron2.engine import DefaultPredictor

    from instseg.data.masks import rle_to_mask

    imgsz, nc = 128, 2
    model = _biased(size, nc, imgsz)
    weights = tmp_path / "model_final.pth"
    torch.save({"model": model.model.state_dict(), "iteration": 0}, weights)  # Detectron2's own layout
    image = _square_png(tmp_path, demo_data, imgsz)

    cfg = model.cfg.clone()
    cfg.defrost()
    cfg.MODEL.WEIGHTS = str(weights)
    theirs = DefaultPredictor(cfg)(cv2.imread(str(image)))["instances"]
    ours = BACKEND.predict(weights, [image], PredictConfig(conf=0.05, max_det=100, imgsz=imgsz, model=size,
                                                           names=["a", "b"], device="cpu"))[0]
    assert BACKEND.describe(weights, PredictConfig(names=["a", "b"])).model == size  # the layout says its size
    assert len(theirs) >= 5 and len(ours) == len(theirs)
    np.testing.assert_allclose(ours.boxes, theirs.pred_boxes.tensor.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(ours.scores, theirs.scores.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(ours.labels, theirs.pred_classes.numpy())
    theirs_masks = theirs.pred_masks.numpy()
    assert 0.01 < theirs_masks.mean() < 0.5
    for k, rle in enumerate(ours.masks):
        np.testing.assert_array_equal(rle_to_mask(rle).astype(bool), theirs_masks[k])


@needs_d2
@pytest.mark.slow
def test_training_step_equals_detectron2_simple_trainer(tmp_path, demo_data):
    """One SGD step on the same batch: instseg's loader + wrapper vs Detectron2's DatasetMapper + SimpleTrainer."""
    from dataclasses import replace

    import pycocotools.mask as mask_util
    from detectron2.data import DatasetMapper
    from detectron2.engine import SimpleTrainer
    from detectron2.structures import BoxMode
    from detectron2.utils.events import EventStorage

    from instseg.engine.setup import load_records
    from instseg.engine.validate import make_loader
    from instseg.models.detectron2 import build_detectron2_maskrcnn

    imgsz = 128
    records = [replace(r, path=_square_png(tmp_path, demo_data, imgsz, i)) for i, r in
               enumerate(load_records(demo_data, "val")[:2])]
    for r in records:  # the PNGs are resized copies: scale the geometry with them
        s = imgsz / r.width
        r.instances = [replace(inst, polygons=[p * s for p in inst.polygons], bbox=None) for inst in r.instances]
        r.width = r.height = imgsz
    images, targets, _ = next(iter(make_loader(records, imgsz=imgsz, mask_stride=1, batch=2)))

    torch.manual_seed(0)
    ours = _tame(build_detectron2_maskrcnn("r50-fpn", 4, imgsz=imgsz)).train()
    theirs = copy.deepcopy(ours.model).train()
    # Detectron2's side reads the same files and annotations (bitmask RLE, xyxy boxes) through its own mapper
    dicts = [{"file_name": str(r.path), "height": imgsz, "width": imgsz, "image_id": i,
              "annotations": [{"bbox": b.tolist(), "bbox_mode": BoxMode.XYXY_ABS, "category_id": int(c),
                               "segmentation": mask_util.encode(np.asfortranarray(m.numpy()))}
                              for b, c, m in zip(t["boxes"], t["labels"], t["masks"])]}
             for i, (r, t) in enumerate(zip(records, targets))]
    mapper = DatasetMapper(ours.cfg, is_train=True)
    batch = [mapper(d) for d in dicts]
    assert torch.equal(batch[0]["image"].flip(0), images[0])  # BGR uint8 of the same pixels

    opt_ours = torch.optim.SGD([p for p in ours.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    opt_theirs = torch.optim.SGD([p for p in theirs.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    torch.manual_seed(1)  # RPN / ROI sampling draws from the global generator: the same draws on both sides
    losses = ours.forward_train(images, targets)
    opt_ours.zero_grad()
    sum(losses.values()).backward()
    opt_ours.step()
    torch.manual_seed(1)
    with EventStorage(0) as storage:
        SimpleTrainer(theirs, [batch], opt_theirs).run_step()
        reference = {k: storage.history(k).latest() for k in losses}
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"}
    for k, v in losses.items():
        assert float(v.detach()) == pytest.approx(reference[k], abs=1e-5, rel=0), k
    after_ours, after_theirs = ours.model.state_dict(), theirs.state_dict()
    for k in ("roi_heads.mask_head.predictor.weight", "backbone.fpn_output2.weight", "roi_heads.box_head.fc1.weight"):
        torch.testing.assert_close(after_ours[k], after_theirs[k], atol=1e-6, rtol=0)


@needs_d2
def test_predict_restores_thresholds_and_mode():
    model = _biased("r50-fpn", 3, 64)
    model.train()
    head = model.model.roi_heads.box_predictor
    images = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = model.predict(images, score_thr=0.0, max_det=7)
    assert len(out) == 2 and model.training
    assert head.test_score_thresh == 0.05 and head.test_topk_per_image == 100
    for o in out:
        k = len(o["scores"])
        assert 0 < k <= 7 and o["masks"].shape == (k, 64, 64) and o["masks"].dtype == torch.bool
        assert int(o["labels"].max()) < 3 and bool((o["boxes"][:, 2:] <= 64).all())


@needs_d2
@pytest.mark.parametrize("freeze,frozen,trainable", [(0, [], ["stem", "res2"]), (2, ["stem", "res2"], ["res3"]),
                                                     (5, ["stem", "res5"], [])])
def test_freeze_at(freeze, frozen, trainable):
    from instseg.models.detectron2 import build_detectron2_maskrcnn

    model = build_detectron2_maskrcnn("r50-fpn", 1, imgsz=64, freeze=freeze)
    assert model.cfg.MODEL.BACKBONE.FREEZE_AT == freeze
    body = model.model.backbone.bottom_up
    for name in frozen:
        assert all(not p.requires_grad for p in getattr(body, name).parameters()), name
    for name in trainable:
        assert all(p.requires_grad for p in getattr(body, name).parameters()), name
    assert all(p.requires_grad for p in model.model.roi_heads.parameters())


@needs_d2
@pytest.mark.slow
def test_pretrained_file_loads_all_but_the_class_layers(tmp_path):
    """A COCO-shaped (80-class) Detectron2 file into a 2-class model: everything but the class layers is
    copied; the zoo's freeze_at 2 applies; another size's file is refused with the fix."""
    from instseg.models.detectron2 import build_detectron2_maskrcnn

    coco = _biased("r50-fpn", 80, 64, seed=1)
    path = tmp_path / "model_final_f10217.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in coco.model.state_dict().items()},
                     "__author__": "Detectron2 Model Zoo"}, f)
    assert BACKEND.owns(path)  # a full-size zoo file (170 MB), recognised from its first keys
    assert BACKEND.describe(path).names[:3] == ["person", "bicycle", "car"]  # COCO's names for 80 classes
    log: list[str] = []
    torch.manual_seed(2)
    model = build_detectron2_maskrcnn("r50-fpn", 2, imgsz=64, pretrained=path, log=log.append)
    assert model.cfg.MODEL.BACKBONE.FREEZE_AT == 2 and "6 class-specific tensors left at init" in log[0]
    ours, theirs = model.model.state_dict(), coco.model.state_dict()
    assert torch.equal(ours["backbone.bottom_up.res3.0.conv1.weight"], theirs["backbone.bottom_up.res3.0.conv1.weight"])
    assert torch.equal(ours["roi_heads.mask_head.mask_fcn1.weight"], theirs["roi_heads.mask_head.mask_fcn1.weight"])
    assert ours["roi_heads.box_predictor.cls_score.weight"].shape == (3, 1024)
    with pytest.raises(WeightsError, match="another size: pick the matching --model"):
        build_detectron2_maskrcnn("r101-fpn", 2, imgsz=64, pretrained=path)


def _subset(train_dir: Path, val_dir: Path, names: list[str], tmp_path: Path, n_train: int, n_val: int) -> Path:
    """A data.yaml listing the first few images of a dataset (nothing is copied)."""
    for split, folder, n in (("train", train_dir, n_train), ("val", val_dir, n_val)):
        (tmp_path / f"{split}.txt").write_text("\n".join(str(p) for p in sorted(folder.iterdir())[:n]) + "\n")
    yaml = tmp_path / "subset.yaml"
    yaml.write_text(f"path: {tmp_path}\ntrain: train.txt\nval: val.txt\nnames: {names!r}\n")
    return yaml


def _train_resume_evaluate(data: Path, tmp_path: Path, names: list[str], detectron2_file: bool) -> None:
    """r50-fpn through the CLI: train 1 epoch, resume to 2; then the backend's evaluate/predict on best.pt
    and (``detectron2_file``) on the same weights saved as a Detectron2 model_final.pth, which also starts a
    new run."""
    from typer.testing import CliRunner

    from instseg.cli import app
    from instseg.engine.checkpoint import load_checkpoint
    from instseg.engine.setup import build_for_run, load_records

    def cli(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    common = ["--device", "cpu", "--imgsz", "64", "--batch", "2", "--quiet", "--workers", "0", "--max-det", "20"]
    cli("train", "--data", str(data), "-a", "detectron2-maskrcnn", "-m", "r50-fpn", "--epochs", "1", "--project",
        str(tmp_path / "runs"), "--lr", "0.002", "--clip-grad", "10", *common)
    run = tmp_path / "runs" / "exp"
    cli("train", "--resume", str(run / "weights" / "last.pt"), "--epochs", "2")
    rows = (run / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and "train/loss_mask" in rows[0] and "train/loss_rpn_cls" in rows[0]
    ckpt = load_checkpoint(run / "weights" / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["architecture"] == "detectron2-maskrcnn" and ckpt["mask_stride"] == 1
    trained = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= trained["segm_mAP"] <= 1.0

    records = load_records(data, "val")
    pc = PredictConfig(conf=0.001, device="cpu", max_det=20)
    best = run / "weights" / "best.pt"
    metrics = BACKEND.evaluate(best, records, pc, out=tmp_path / "val.json")
    assert metrics["segm_mAP"] == pytest.approx(trained["segm_mAP"], abs=1e-9)  # = the trainer's final eval
    assert (tmp_path / "val.json").is_file()
    preds = BACKEND.predict(best, [r.path for r in records], pc)
    assert [(p.height, p.width) for p in preds] == [(r.height, r.width) for r in records]
    assert all(m["size"] == [p.height, p.width] for p in preds for m in p.masks)
    if not detectron2_file:
        return
    d2_file = tmp_path / "model_final.pth"  # the same weights as Detectron2 saves them
    state = {k.removeprefix("model."): v for k, v in load_checkpoint(best)["model"].items()}
    torch.save({"model": state, "iteration": 2}, d2_file)
    assert BACKEND.owns(d2_file) and BACKEND.owns(best)  # a Detectron2 file, and an instseg checkpoint of it
    assert BACKEND.describe(d2_file, PredictConfig(names=names)).kind == "detectron2"
    assert BACKEND.describe(best).kind == "instseg"
    same = BACKEND.evaluate(d2_file, records, PredictConfig(conf=0.001, device="cpu", max_det=20, imgsz=64,
                                                            names=names))
    assert same["segm_mAP"] == pytest.approx(metrics["segm_mAP"], abs=1e-9)  # no EMA under "step": same weights
    from instseg.config import TrainConfig

    started = build_for_run(TrainConfig(data=data, architecture="detectron2-maskrcnn", model="r50-fpn", imgsz=64,
                                        weights=d2_file), len(names), log=lambda _m: None)
    key = "roi_heads.mask_head.mask_fcn1.weight"
    assert torch.equal(started.model.state_dict()[key], state[key])


@needs_d2
@pytest.mark.slow
@pytest.mark.stress  # the contract test (tests/backends/test_contract.py) runs the same flow in make test
def test_train_resume_predict_evaluate_generated(tmp_path):
    from instseg.data.demo import DEMO_NAMES, make_demo_dataset

    data = make_demo_dataset(tmp_path / "demo", n_train=4, n_val=2, imgsz=64, seed=1)
    _train_resume_evaluate(data, tmp_path, list(DEMO_NAMES), detectron2_file=True)


@needs_d2
@pytest.mark.slow
@pytest.mark.stress
def test_train_resume_predict_evaluate_fire_seg(fire_seg, tmp_path):
    data = _subset(fire_seg / "train" / "images", fire_seg / "valid" / "images", ["fire"], tmp_path, 6, 2)
    _train_resume_evaluate(data, tmp_path, ["fire"], detectron2_file=False)


@needs_d2
@pytest.mark.slow
@pytest.mark.parametrize("size", list(SIZES))
def test_registry_params_are_the_built_models(size):
    from instseg.models.build import build_model
    from instseg.models.registry import get_size

    model = build_model("detectron2-maskrcnn", size, 80, imgsz=64)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(get_size("detectron2-maskrcnn", size).params_m, abs=0.005)
    assert model.mask_stride == 1 and model.cfg.MODEL.ROI_HEADS.NUM_CLASSES == 80
