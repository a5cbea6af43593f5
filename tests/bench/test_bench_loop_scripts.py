"""Smoke runs of the whole-loop benchmarks on a few fire-seg images (they print figures; nothing here
asserts a time), and the pure pieces of the MMDetection side."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "scripts" / "bench"
FIRE = REPO.parent / "shared" / "datasets" / "fire-seg" / "data.yaml"
needs_fire = pytest.mark.skipif(not FIRE.exists(), reason=f"{FIRE} absent (shared datasets not mounted)")


def _load(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(script, *args, timeout=600):
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    r = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, env=env,
                       timeout=timeout, cwd=REPO)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r.stdout


@needs_fire
def test_bench_train_loop_instseg_side(tmp_path):
    out = _run("bench_train_loop.py", "--arch", "rtmdet-ins", "--model", "tiny", "--imgsz", "64", "--batch", "2",
               "--epochs", "2", "--train-images", "4", "--val-images", "2", "--reference", "none", "--json",
               str(tmp_path / "t.json"), "--keep", str(tmp_path / "run"))
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["n_train"] == 4 and t["n_val"] == 2
    s = t["instseg"]
    assert s["ips_epoch1"] > 0 and s["ips_later"] > 0 and s["val_s"] > 0 and s["wall_s"] > 0
    assert "reference not run: none requested" in out
    assert (tmp_path / "run" / "weights" / "last.pt").exists()


@needs_fire
@pytest.mark.stress  # two Mask R-CNNs built and run: most of a minute on 2 cores (make test-stress)
def test_bench_train_loop_torchvision_reference(tmp_path):
    _run("bench_train_loop.py", "--arch", "maskrcnn", "--model", "r50-fpn", "--imgsz", "64", "--batch", "2",
         "--epochs", "1", "--train-images", "2", "--val-images", "1", "--json", str(tmp_path / "t.json"))
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["reference"]["name"] == "torchvision references loop"
    assert t["reference"]["ips_epoch1"] > 0 and t["reference"]["val_s"] > 0 and t["time_ratio_epoch"] > 0


@needs_fire
def test_bench_val_instseg_side(tmp_path):
    out = _run("bench_val.py", "--arch", "rtmdet-ins", "--model", "tiny", "--imgsz", "64", "--val-images", "3",
               "--repeats", "1", "--reference", "none", "--json", str(tmp_path / "v.json"))
    v = json.loads((tmp_path / "v.json").read_text())
    s = v["instseg"]
    assert v["n_val"] == 3 and s["s_per_image"] > 0
    assert 0 <= s["s_per_image_without_forward"] < s["s_per_image"] and s["forward_s_per_image"] > 0
    assert "ms/image" in out


@needs_fire
@pytest.mark.stress  # a Mask R-CNN built and run twice per pass (make test-stress)
def test_bench_val_torchvision_reference_on_the_same_weights(tmp_path):
    out = _run("bench_val.py", "--arch", "maskrcnn", "--model", "r50-fpn", "--imgsz", "64", "--val-images", "2",
               "--batch", "1", "--repeats", "1", "--json", str(tmp_path / "v.json"))
    v = json.loads((tmp_path / "v.json").read_text())
    assert v["reference"]["name"] == "torchvision evaluate" and v["ratio"] > 0
    assert v["reference"]["model_s_per_image"] > 0 and "ratio instseg/torchvision evaluate" in out
    # one set of weights, two pipelines: the same scores within what the letterbox resize changes
    assert v["instseg"]["segm_mAP"] == pytest.approx(v["reference"]["segm_mAP"] or 0.0, abs=0.05)


def test_mmdet_pipeline_sizes_follow_imgsz():
    m = _load("mmdet_loop")
    pipe = [{"type": "CachedMosaic", "img_scale": (640, 640)}, {"type": "RandomResize", "scale": (1280, 1280),
            "ratio_range": (0.5, 2.0)}, {"type": "RandomCrop", "crop_size": (640, 640)},
            {"type": "Pad", "size": (640, 640), "pad_val": {"img": (114, 114, 114)}}]
    s = m._scaled(pipe, 320)
    assert s[0]["img_scale"] == (320, 320) and s[1]["scale"] == (640, 640) and s[1]["ratio_range"] == (0.5, 2.0)
    assert s[2]["crop_size"] == (320, 320) and s[3]["pad_val"] == {"img": (114, 114, 114)}
    solo = m._solo_pipeline([{"type": "LoadImageFromFile"}, {"type": "RandomChoiceResize", "scales": [(852, 512)]},
                             {"type": "RandomFlip", "prob": 0.5}], 320)
    assert solo[1] == {"type": "Resize", "scale": (320, 320), "keep_ratio": True} and solo[2]["prob"] == 0.5


def test_mmdet_absent_is_a_reason(monkeypatch, tmp_path):
    lc = _load("loop_common")
    monkeypatch.setattr(lc, "MMDET_PYTHON", tmp_path / "nope" / "python")
    assert "no MMDetection environment" in lc.mmdet_available()


def test_gpu_suite_is_valid_bash():
    r = subprocess.run(["bash", "-n", str(BENCH / "gpu_suite.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@needs_fire
@pytest.mark.skipif(importlib.util.find_spec("detectron2") is None, reason="detectron2 not built (make detectron2)")
def test_bench_detectron2_step_both_parts(tmp_path):
    out = _run("bench_detectron2_step.py", "--data", str(FIRE), "--imgsz", "64", "--batch", "2", "--iters", "2",
               "--steps", "1", "--n-train", "2", "--n-val", "1", "--json", str(tmp_path / "d.json"))
    d = json.loads((tmp_path / "d.json").read_text())
    run, steps = d["instseg_train"], d["step_seconds"]
    assert run["iters"] >= 2 and len(run["loss"]) == run["epochs"] and run["s_per_iter"] > 0
    assert steps["instseg_s"] > 0 and steps["detectron2_s"] > 0 and "instseg/Detectron2" in out


@needs_fire
@pytest.mark.stress  # two Mask R-CNN trainings (make test-stress)
def test_bench_train_loop_torchvision_reference_side(tmp_path):
    out = _run("bench_train_loop.py", "--arch", "maskrcnn", "--model", "r50-fpn", "--imgsz", "64", "--batch", "1",
               "--epochs", "1", "--train-images", "2", "--val-images", "2", "--json", str(tmp_path / "t.json"))
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["reference"]["name"] == "torchvision references loop" and t["reference"]["val_s"] > 0
    assert t["reference"]["segm_mAP_last"] is not None  # its validation ran through pycocotools
    assert t["time_ratio_epoch"] > 0 and "instseg/reference" in out
