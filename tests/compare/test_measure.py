"""What ``instseg compare`` measures besides mAP: GFLOPs (a hand-counted conv, a tiny engine checkpoint,
Ultralytics' own count) and the per-image latency (median and p90 over images timed one by one), and that
both reach compare.json, compare.csv and the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from instseg.compare.measure import count_flops, count_gflops, latency_stats, measure_latency
from instseg.contract import PredictConfig


def test_a_conv_counts_two_flops_per_multiply_add():
    cin, cout, k, h, w = 3, 8, 3, 16, 12
    conv = nn.Conv2d(cin, cout, k, padding=1, bias=True)
    x = torch.zeros(1, cin, h, w)
    assert count_flops(lambda: conv(x)) == 2 * cin * cout * k * k * h * w  # bias not counted
    strided = nn.Conv2d(cin, cout, k, stride=2, padding=1)
    assert count_flops(lambda: strided(x)) == 2 * cin * cout * k * k * (h // 2) * (w // 2)
    depthwise = nn.Conv2d(cout, cout, k, padding=1, groups=cout)
    y = torch.zeros(1, cout, h, w)
    assert count_flops(lambda: depthwise(y)) == 2 * 1 * cout * k * k * h * w  # Cin per group
    fc = nn.Linear(10, 4)
    assert count_flops(lambda: fc(torch.zeros(2, 10))) == 2 * 2 * 10 * 4
    assert count_flops(lambda: torch.relu(y) + y) == 0  # element-wise ops: not counted


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> tuple[Path, list[Path]]:
    from instseg.data.demo import make_demo_dataset
    from instseg.engine.checkpoint import save_checkpoint
    from instseg.models.build import build_model

    root = tmp_path_factory.mktemp("measure")
    data = make_demo_dataset(root / "data", n_train=1, n_val=3, imgsz=96, seed=3)
    from instseg.compare.runs import ground_truth

    images = [r.path for r in ground_truth(data).records]
    torch.manual_seed(0)
    model = build_model("solov2", "nano", 3, imgsz=64)
    path = save_checkpoint(root / "solov2.pt", {"model": model.state_dict(), "architecture": "solov2",
                                                "size": "nano", "names": ["a", "b", "c"], "imgsz": 64, "epoch": 0})
    return path, images


def _conv_module_flops(model, x, cfg) -> int:
    """2 * Cin/groups * Cout * kh * kw * Hout * Wout summed over the model's Conv2d modules (forward hooks)."""
    total = [0]

    def hook(m, inp, out):
        kh, kw = m.kernel_size
        total[0] += 2 * (m.in_channels // m.groups) * m.out_channels * kh * kw * out.shape[-2] * out.shape[-1] \
            * out.shape[0]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.predict(x, cfg.conf, cfg.max_det)
    for h in handles:
        h.remove()
    return total[0]


def test_gflops_of_an_engine_checkpoint_at_the_compare_imgsz(tiny_ckpt):
    from instseg.compare.measure import _letterboxed
    from instseg.engine.predict import load_trained_model

    path, images = tiny_ckpt
    cfg = PredictConfig(conf=0.001, max_det=100)
    counted = {}
    for imgsz in (64, 128):
        counted[imgsz] = count_gflops(path, imgsz, images[0], cfg)
        model, _, size = load_trained_model(path, "cpu", imgsz)
        assert size == imgsz
        convs = _conv_module_flops(model, _letterboxed(images[0], imgsz, 4), cfg) / 1e9
        # every conv layer is in the count; above it: SOLOv2's dynamic mask kernels on its candidates
        assert convs > 0 and convs <= counted[imgsz] <= 1.5 * convs, (imgsz, convs, counted[imgsz])
    # the backbone and mask branch grow with the pixels (the S x S grid branches do not)
    assert counted[128] > 1.2 * counted[64]
    assert count_gflops(path, 64, None, cfg) > 0  # a black image when none is given


@pytest.mark.slow
def test_yolo_gflops_match_ultralytics_own_count_and_it_is_timed_per_image(tmp_path, tiny_ckpt):
    """Ultralytics' get_flops (thop MACs x 2) and instseg's counter agree on the same model: the
    convention is the same. thop also counts BatchNorm and activations, FlopCounterMode does not (~2 %).
    The Ultralytics backend's predictor is timed image by image like the others."""
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    torch.manual_seed(0)
    yolo = YOLO("yolo11n-seg.yaml", task="segment")
    path = tmp_path / "yolo11n-seg.pt"
    yolo.save(path)
    ours = count_gflops(path, 320)
    theirs = get_flops(yolo.model, 320)
    assert theirs > 0 and ours == pytest.approx(theirs, rel=0.03)
    assert count_gflops(path, 300) == pytest.approx(ours)  # rounded up to the stride, as Ultralytics does

    from instseg.backends.ultralytics import BACKEND

    images = tiny_ckpt[1]
    cfg = PredictConfig(imgsz=64, conf=0.001, max_det=20, device="cpu")
    mine = [BACKEND.predictor(path, cfg)([p])[0] for p in images]
    theirs = BACKEND.predict(path, images, cfg)
    assert [(a.height, a.width, len(a)) for a in mine] == [(b.height, b.width, len(b)) for b in theirs]
    lat = measure_latency(BACKEND, path, images, cfg, warmup=1, iters=3)
    assert len(lat.times_ms) == 3 and lat.ms_median > 0 and lat.distinct_images == 3


def test_an_onnx_file_is_not_counted(tmp_path, monkeypatch):
    from instseg import backends

    class OnnxLike:
        name = "onnx"

    monkeypatch.setattr(backends, "backend_for_weights", lambda w, cfg=None: OnnxLike())
    (tmp_path / "m.onnx").write_bytes(b"\0")
    with pytest.raises(ValueError, match="not a torch module .onnx backend."):
        count_gflops(tmp_path / "m.onnx", 64)


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeBackend:
    """predictor() 'loads' once; each call advances the fake clock by the image's time."""

    name = "fake"

    def __init__(self, clock: FakeClock, ms: dict[str, float]):
        self.clock, self.ms, self.loads, self.calls = clock, ms, 0, []

    def predictor(self, weights, cfg):
        assert cfg.batch == 1
        self.loads += 1
        self.clock.t += 5.0  # loading the weights: never in a per-image time

        def predict(images):
            self.calls.append([Path(p).name for p in images])
            self.clock.t += sum(self.ms[Path(p).name] for p in images) / 1000.0
            return [None for _ in images]

        return predict


def test_latency_median_and_p90_are_over_per_image_times():
    times = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 10.0, 6.0]
    names = [f"{i}.jpg" for i in range(10)]
    clock = FakeClock()
    backend = FakeBackend(clock, dict(zip(names, times)))
    lat = measure_latency(backend, Path("w.pt"), [Path(n) for n in names], PredictConfig(device="cpu", batch=8),
                          warmup=2, iters=10, clock=clock)
    assert backend.loads == 1
    assert backend.calls == [["0.jpg"], ["1.jpg"]] + [[n] for n in names]  # warm-up first, then one image a call
    assert lat.times_ms == pytest.approx(times)
    assert lat.ms_median == pytest.approx(5.5) and lat.ms_p90 == pytest.approx(9.1)  # not 10.0: interpolated
    assert lat.ms_mean == pytest.approx(5.5)
    assert (lat.images, lat.distinct_images, lat.warmup, lat.batch, lat.device) == (10, 10, 2, 1, "cpu")
    assert lat.threads == torch.get_num_threads()
    # fewer images than timings: the images repeat, and the record says so
    lat = measure_latency(backend, Path("w.pt"), [Path(n) for n in names[:3]], PredictConfig(device="cpu"),
                          warmup=0, iters=7, clock=clock)
    assert lat.times_ms == pytest.approx([5.0, 1.0, 9.0, 5.0, 1.0, 9.0, 5.0])
    assert (lat.images, lat.distinct_images) == (7, 3) and lat.ms_median == pytest.approx(5.0)
    assert lat.ms_p90 == pytest.approx(float(np.quantile(lat.times_ms, 0.9)))
    with pytest.raises(ValueError):
        latency_stats([])


def test_engine_predictor_predicts_as_predict_and_is_timed(tiny_ckpt):
    from instseg.backends import backend_for_weights

    path, images = tiny_ckpt
    cfg = PredictConfig(imgsz=64, conf=0.001, max_det=20, device="cpu")
    backend = backend_for_weights(path, cfg)
    one = backend.predictor(path, cfg)
    mine = [one([p])[0] for p in images]
    theirs = backend.predict(path, images, cfg)
    for a, b in zip(mine, theirs):
        assert (a.height, a.width) == (b.height, b.width) and np.allclose(a.boxes, b.boxes)
        assert [m["counts"] for m in a.masks] == [m["counts"] for m in b.masks]
    lat = measure_latency(backend, path, images, cfg, warmup=1, iters=4)
    assert len(lat.times_ms) == 4 and all(t > 0 for t in lat.times_ms)
    assert min(lat.times_ms) <= lat.ms_median <= lat.ms_p90 <= max(lat.times_ms)
    assert lat.peak_rss_mb > 50 and lat.device == "cpu"


def test_gflops_and_p90_reach_json_csv_and_table(tmp_path):
    from instseg.compare.measure import Latency
    from instseg.compare.report import CSV_COLUMNS, build_document, render_table, write_outputs
    from instseg.compare.runs import Entry
    from instseg.compare.score import Score
    from instseg.report.compare_schema import load_compare

    metrics = {f"{k}_{key}": 0.5 for k in ("segm", "bbox") for key in ("mAP", "mAP50", "mAP75", "mAPs", "mAPm", "mAPl")}
    entries = [Entry(name="a", architecture="solov2", size="nano"), Entry(name="b", architecture="yolo", size="n")]
    rng = np.random.default_rng(0)
    scores = {e.name: Score(metrics=dict(metrics), ci={"segm_mAP": [0.4, 0.6]}, source="x",
                            samples={"segm_mAP": rng.uniform(0.4, 0.6, 50)}) for e in entries}
    lat = Latency(device="cpu", warmup=2, images=4, distinct_images=4, threads=2, ms_median=12.25, ms_p90=19.5,
                  ms_mean=14.0, peak_rss_mb=300.0, peak_cuda_mb=None, times_ms=[10.0, 12.0, 12.5, 21.0])
    extras = {"a": {"params": 4.0e6, "gflops": 7.25, "latency": lat},
              "b": {"params": 2.0e6, "gflops": None, "gflops_error": "ValueError: not a torch module"}}
    doc = build_document(entries, scores, extras, ["x"], {"data": "d", "split": "val", "imgsz": 64,
                                                          "latency": {"images": 4, "warmup": 2, "device": "cpu",
                                                                      "threads": 2},
                                                          "gflops": {"imgsz": 64}}, tmp_path)
    write_outputs(doc, tmp_path)
    saved = json.loads((tmp_path / "compare.json").read_text())
    a, b = saved["runs"]
    assert a["gflops"] == 7.25 and b["gflops"] is None and b["gflops_error"].startswith("ValueError")
    assert a["latency"]["p90_ms"] == 19.5 and a["latency"]["median_ms"] == a["latency_ms"] == 12.25
    assert a["latency"]["per_image_ms"] == [10.0, 12.0, 12.5, 21.0]
    assert {k: a["latency"][k] for k in ("batch", "images", "warmup", "threads", "device")} == \
        {"batch": 1, "images": 4, "warmup": 2, "threads": 2, "device": "cpu"}
    load_compare(tmp_path)  # the page's schema check accepts it
    assert "gflops" in CSV_COLUMNS and "latency_p90_ms" in CSV_COLUMNS
    import csv

    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    assert float(rows[0]["gflops"]) == 7.25 and rows[1]["gflops"] == ""
    assert float(rows[0]["latency_p90_ms"]) == 19.5
    table = render_table(saved, width=220)
    assert "GFLOPs" in table and "7.2" in table and "12.2/19.5" in table
    assert "over 4 val images timed one by one" in table
