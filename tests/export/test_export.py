"""Export, reload and compare: onnxruntime + numpy post-process against the PyTorch model on the same
images (boxes 1e-3 px, scores 1e-4, mask IoU >= 0.99, the same count), metadata, and every bad input."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_faithful, biased_model, biased_yolo, compare, write_checkpoint, write_images
from instseg.backends.onnx import BACKEND
from instseg.config import ConfigError
from instseg.contract import PredictConfig
from instseg.errors import InstsegError, WeightsError
from instseg.export import export_model

SMALLEST = {"rtmdet-ins": "tiny", "solov2": "nano", "maskrcnn": "r50-fpn", "detectron2-maskrcnn": "r50-fpn"}
needs_detectron2 = pytest.mark.skipif(importlib.util.find_spec("detectron2") is None,
                                      reason="detectron2 is not built (make detectron2)")


def _exported(tmp: Path, arch: str, imgsz: int, names=("a", "b"), calibrate_at: int | None = None, **kw):
    model = biased_model(arch, SMALLEST[arch], len(names), calibrate_at or imgsz)
    pt = write_checkpoint(model, arch, SMALLEST[arch], list(names), imgsz, tmp / "best.pt")
    out, meta = export_model(pt, device="cpu", **kw)
    return pt, out, meta


@pytest.fixture(scope="module")
def rtmdet_64(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rtmdet64")
    pt, out, meta = _exported(tmp, "rtmdet-ins", 64)
    return pt, out, meta, write_images(tmp / "images", 2, 64)


def test_metadata_says_everything(rtmdet_64):
    pt, out, meta, _ = rtmdet_64
    info = BACKEND.describe(out)
    assert (info.backend, info.architecture, info.model, info.names, info.imgsz) == (
        "onnx", "rtmdet-ins", "tiny", ["a", "b"], 64)
    extra = info.extra
    assert extra["dynamic"] is False and extra["half"] is False and extra["channel_order"] == "BGR"
    assert extra["outputs"] == ["scores", "dists", "kernels", "mask_feat"]
    assert extra["postprocess"] == {"nms_pre": 1000, "iou_thr": 0.6, "mask_thr": 0.5, "strides": [8, 16, 32]}
    assert extra["source"] == "best.pt" and extra["opset"] == 17
    assert max(meta["parity"].values()) < 1e-3


def test_metadata_reader_equals_onnx(rtmdet_64):
    import onnx

    from instseg.backends.onnx_meta import read_metadata_props

    model = onnx.load(str(rtmdet_64[1]))
    assert read_metadata_props(rtmdet_64[1]) == {p.key: p.value for p in model.metadata_props}


def test_fidelity_rtmdet_64(rtmdet_64):
    from instseg.engine.predict import predict_images

    pt, out, _, images = rtmdet_64
    cfg = PredictConfig(conf=0.25, device="cpu")
    assert_faithful(compare(predict_images(pt, images, cfg), BACKEND.predict(out, images, cfg)), min_detections=2)


def test_static_graph_refuses_another_imgsz(rtmdet_64):
    _, out, _, images = rtmdet_64
    with pytest.raises(WeightsError, match=r"static graph exported at imgsz 64; --imgsz 128 does not fit.*--dynamic"):
        BACKEND.predict(out, images, PredictConfig(imgsz=128))


def test_onnx_without_instseg_metadata_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    helper.set_model_props(model, {"author": "someone else"})
    path = tmp_path / "foreign.onnx"
    onnx.save(model, str(path))
    assert BACKEND.owns(path)
    with pytest.raises(WeightsError, match=r"foreign.onnx: an ONNX file without instseg metadata.*instseg export"):
        BACKEND.predict(path, [], PredictConfig())


def test_garbage_onnx_is_refused(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
    with pytest.raises(WeightsError, match="broken.onnx: not a readable ONNX model"):
        BACKEND.describe(path)


def test_owns_only_onnx_files(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"x")
    (tmp_path / "a.onnx").write_bytes(b"x")
    assert not BACKEND.owns(tmp_path / "a.pt") and BACKEND.owns(tmp_path / "a.onnx")
    assert not BACKEND.owns(tmp_path / "missing.onnx")


def test_available_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert "pip install 'instseg[export]'" in BACKEND.available()


def test_train_is_refused():
    with pytest.raises(InstsegError, match="cannot be trained"):
        BACKEND.train(None, None)


@pytest.mark.parametrize("kw,match", [
    ({"half": True}, "--half exports FP16, which needs a CUDA device"),
    ({"opset": 9}, "--opset 9: valid 11"),
    ({"fmt": "tensorrt"}, "--format tensorrt: instseg exports onnx only"),
    ({"imgsz": 100}, r"--imgsz 100 must be a positive multiple of 32.*try --imgsz 96"),
])
def test_bad_export_options(rtmdet_64, kw, match):
    import torch

    if kw.get("half") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --half is valid here")
    with pytest.raises(ConfigError, match=match):
        export_model(rtmdet_64[0], rtmdet_64[0].with_name("x.onnx"), device="cpu", **kw)


def test_onnx_weights_are_not_exported_again(rtmdet_64):
    with pytest.raises(WeightsError, match="already an ONNX file"):
        export_model(rtmdet_64[1])


# ---- every architecture at a tiny size (slow: tracing takes seconds) ----
@pytest.mark.slow
@pytest.mark.parametrize("arch", ["rtmdet-ins", "solov2", "maskrcnn",
                                  pytest.param("detectron2-maskrcnn", marks=needs_detectron2)])
def test_fidelity_every_architecture(arch, tmp_path):
    from instseg.engine.predict import predict_images

    imgsz = 160
    pt, out, meta = _exported(tmp_path, arch, imgsz)
    images = write_images(tmp_path / "images", 3, imgsz)
    cfg = PredictConfig(conf=0.25, device="cpu")
    stats = compare(predict_images(pt, images, cfg), BACKEND.predict(out, images, cfg))
    assert_faithful(stats, min_detections=10)


@pytest.mark.slow
def test_dynamic_graph_other_size_and_batch(tmp_path):
    """A --dynamic graph takes another imgsz and batches of 2, and still equals PyTorch there."""
    from instseg.engine.predict import predict_images

    pt, out, meta = _exported(tmp_path, "rtmdet-ins", 128, calibrate_at=160, dynamic=True)
    assert meta["dynamic"] is True
    images = write_images(tmp_path / "images", 3, 160)
    cfg = PredictConfig(imgsz=160, conf=0.25, device="cpu", batch=2)
    assert_faithful(compare(predict_images(pt, images, cfg), BACKEND.predict(out, images, cfg)), min_detections=3)


@pytest.mark.slow
@needs_detectron2
def test_detectron2_dynamic_graph_other_size(tmp_path):
    """Detectron2's traced inference as a --dynamic graph: exported at 128, run at 160 on letterboxed and
    non-square images, equal to the .pt there (numpy pasting included), with its metadata."""
    from instseg.engine.predict import predict_images

    pt, out, meta = _exported(tmp_path, "detectron2-maskrcnn", 128, calibrate_at=160, dynamic=True)
    assert meta["kind"] == "detectron2" and meta["channel_order"] == "BGR" and meta["postprocess"]["mask_thr"] == 0.5
    assert meta["parity"]["detections"] > 0
    images = write_images(tmp_path / "images", 3, 160)
    cfg = PredictConfig(imgsz=160, conf=0.25, device="cpu")
    assert_faithful(compare(predict_images(pt, images, cfg), BACKEND.predict(out, images, cfg)), min_detections=10)
    with pytest.raises(WeightsError, match="re-export with --max-det 200"):
        BACKEND.predict(out, images, PredictConfig(imgsz=160, conf=0.25, device="cpu", max_det=200))


@pytest.mark.slow
def test_simplify_keeps_outputs(tmp_path):
    pytest.importorskip("onnxsim", reason="onnxsim is not installed")
    from instseg.engine.predict import predict_images

    pt, out, meta = _exported(tmp_path, "solov2", 128, simplify=True)
    assert BACKEND.describe(out).extra["simplified"] is True
    images = write_images(tmp_path / "images", 2, 128)
    cfg = PredictConfig(conf=0.1, device="cpu")
    assert_faithful(compare(predict_images(pt, images, cfg), BACKEND.predict(out, images, cfg)), min_detections=2)


@pytest.mark.slow
def test_evaluate_onnx_equals_pt(tmp_path, demo_data):
    """instseg's evaluator gives the .onnx the same COCO numbers as the .pt on the demo val split."""
    from instseg.api import evaluate_weights
    from instseg.engine.setup import load_records

    from instseg.data.demo import DEMO_NAMES

    pt, out, _ = _exported(tmp_path, "solov2", 160, names=DEMO_NAMES)
    pt_metrics = evaluate_weights(pt, demo_data, "val", PredictConfig(conf=0.001, device="cpu"))
    onnx_metrics = BACKEND.evaluate(out, load_records(demo_data, "val", log=lambda *a: None),
                                    PredictConfig(conf=0.001, device="cpu"), out=tmp_path / "val.json")
    ref = pt_metrics.to_dict()
    for key in ("segm_mAP", "segm_mAP50", "bbox_mAP"):
        assert onnx_metrics[key] == pytest.approx(ref[key], abs=1e-3), key
    assert (tmp_path / "val.json").is_file()


@pytest.mark.slow
def test_yolo_export_and_predict(tmp_path):
    pytest.importorskip("ultralytics", reason="ultralytics is not installed: pip install 'instseg[yolo]'")
    from instseg.backends import ultralytics as ub

    pt = biased_yolo(tmp_path / "best.pt")
    out, meta = export_model(pt, imgsz=160, device="cpu")
    info = BACKEND.describe(out)
    assert (info.architecture, info.model, info.imgsz, info.extra["kind"]) == ("yolo11-seg", "n", 160, "ultralytics")
    from instseg.backends.onnx_meta import read_metadata_props

    assert "stride" in read_metadata_props(out)  # Ultralytics' own metadata is kept beside instseg's
    images = write_images(tmp_path / "images", 3, 160)[:2]  # square: Ultralytics letterboxes a .pt minimally
    cfg = PredictConfig(imgsz=160, conf=0.05, device="cpu")
    assert_faithful(compare(ub.predict(pt, images, cfg), BACKEND.predict(out, images, cfg)), min_detections=5)


@pytest.mark.slow
def test_cli_export_and_module_predict(tmp_path):
    from typer.testing import CliRunner

    from instseg.cli import app
    from instseg.export.__main__ import main

    model = biased_model("rtmdet-ins", "tiny", 2, 64)
    pt = write_checkpoint(model, "rtmdet-ins", "tiny", ["a", "b"], 64, tmp_path / "best.pt")
    res = CliRunner().invoke(app, ["export", "--weights", str(pt), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "static, opset 17" in res.output and "max abs difference" in res.output
    images = write_images(tmp_path / "images", 2, 64)
    assert main(["predict", "--weights", str(pt.with_suffix(".onnx")), "--source", str(images[0].parent),
                 "--out", str(tmp_path / "pred")]) == 0
    import json

    assert len(json.loads((tmp_path / "pred" / "images.json").read_text())["images"]) == 2
    res = CliRunner().invoke(app, ["export", "--weights", str(pt), "--half", "--device", "cpu"])
    assert res.exit_code != 0 and "CUDA" in str(res.exception)

