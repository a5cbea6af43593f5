"""``instseg compare`` end to end on generated data (train, score, latency, bootstrap, table, JSON, resume),
and its bad inputs: an unknown -a, a run folder without metrics, runs on different ground truth, a failing
entry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from instseg.compare.runs import CompareError, Entry, check_same_ground_truth, read_run
from instseg.compare.runner import Protocol, parse_spec, train_entries


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from instseg.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("cmp"), n_train=4, n_val=3, imgsz=96, seed=1)


def _fake_run(root: Path, data: Path, metrics: dict | None = None) -> Path:
    from instseg.config import TrainConfig, save_yaml

    root.mkdir(parents=True)
    save_yaml(TrainConfig(data=data, architecture="solov2", model="nano", epochs=1, imgsz=64), root / "config.yaml")
    if metrics is not None:
        (root / "metrics.json").write_text(json.dumps(metrics))
    return root


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    from instseg import cli

    monkeypatch.setattr(sys, "argv", ["instseg", "compare", *args])
    with pytest.raises(SystemExit) as e:
        cli.main()
    return e.value.code, capsys.readouterr().err


def test_unknown_architecture_and_size_are_refused_before_training(tmp_path, monkeypatch, capsys):
    from instseg.config import ConfigError

    with pytest.raises(ConfigError, match="unknown architecture 'nope'.*valid:"):
        parse_spec("nope:n")
    with pytest.raises(ConfigError, match="has no size 'huge'"):
        parse_spec("solov2:huge")
    assert parse_spec("solov2") == ("solov2", "nano") or parse_spec("solov2")[0] == "solov2"
    code, err = _cli(monkeypatch, capsys, "--data", str(tmp_path / "d.yaml"), "-a", "rtmdet-ins:tiny", "-a", "nope:x",
                     "--out", str(tmp_path / "out"))
    assert code == 1 and "unknown architecture 'nope'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing trained


def test_run_folder_without_metrics_is_refused(tmp_path, demo, monkeypatch, capsys):
    run = _fake_run(tmp_path / "unfinished", demo)
    with pytest.raises(CompareError, match="no metrics.json"):
        read_run(run)
    code, err = _cli(monkeypatch, capsys, str(run), str(tmp_path / "missing"))
    assert code == 1 and "no metrics.json" in err and len(err.strip().splitlines()) == 1


def test_runs_on_different_ground_truth_are_refused(tmp_path, demo):
    from instseg.data.demo import make_demo_dataset

    other = make_demo_dataset(tmp_path / "other", n_train=4, n_val=3, imgsz=96, seed=2)
    a = read_run(_fake_run(tmp_path / "a", demo, {}))
    b = read_run(_fake_run(tmp_path / "b", other, {}))
    same = read_run(_fake_run(tmp_path / "c", demo, {}))
    gt = check_same_ground_truth([a, same])
    assert len(gt.sha256) == 64 and len(gt.gt["images"]) == 3
    with pytest.raises(CompareError, match="different ground truth"):
        check_same_ground_truth([a, same, b])
    stale = read_run(_fake_run(tmp_path / "d", demo, {"gt_sha256": "0" * 64}))
    with pytest.raises(CompareError, match="dataset changed"):
        check_same_ground_truth([a, stale])


def test_gt_hash_ignores_layout_not_content(demo):
    from instseg.evaluation.gt_hash import gt_sha256
    from instseg.compare.runs import ground_truth

    gt = ground_truth(demo).gt
    shuffled = {**gt, "images": [dict(i, file_name="/elsewhere/" + i["file_name"]) for i in reversed(gt["images"])],
                "info": {}}
    assert gt_sha256(shuffled) == gt_sha256(gt)
    changed = {**gt, "annotations": [dict(gt["annotations"][0], category_id=99), *gt["annotations"][1:]]}
    assert gt_sha256(changed) != gt_sha256(gt)


def test_every_trainer_records_the_hash_compare_checks(demo):
    """The GT the engine's trainer and the Ultralytics backend score on hashes like compare's own."""
    from instseg.backends.ultralytics import check_dataset
    from instseg.compare.runs import ground_truth
    from instseg.data.coco import records_to_coco
    from instseg.engine import validate
    from instseg.engine.setup import dataset_names, load_records
    from instseg.evaluation.gt_hash import gt_sha256

    expected = ground_truth(demo).sha256
    engine_gt, _ = validate.ground_truth(load_records(demo, "val", log=lambda *a: None), dataset_names(demo))
    assert gt_sha256(engine_gt) == expected
    yolo = check_dataset(demo)
    assert gt_sha256(records_to_coco(yolo["val"], yolo["names"], list(range(1, len(yolo["names"]) + 1)))) == expected


def test_time_budget_is_part_of_the_protocol(tmp_path, demo, monkeypatch):
    from instseg import api
    from instseg.compare.runner import _train_config
    from instseg.config import save_yaml

    p = Protocol(data=demo, epochs=1, imgsz=64, time=0.01)
    assert _train_config("solov2", "nano", 0, p, tmp_path, "solov2-nano").time == 0.01
    root = tmp_path / "out" / "solov2-nano"
    root.mkdir(parents=True)
    save_yaml(_train_config("solov2", "nano", 0, p, tmp_path / "out", "solov2-nano"), root / "config.yaml")
    monkeypatch.setattr(api, "train", lambda *a, **k: pytest.fail("trained under another protocol"))
    untimed = train_entries(["solov2:nano"], Protocol(data=demo, epochs=1, imgsz=64), tmp_path / "out",
                            progress=lambda *a: None)
    assert "another protocol" in untimed[0].error and "time 0.01 vs None h" in untimed[0].error
    other = train_entries(["solov2:nano"], Protocol(data=demo, epochs=1, imgsz=64, time=0.01, overrides=["nbs=8"]),
                          tmp_path / "out", progress=lambda *a: None)
    assert "schedule.nbs 64 vs 8" in other[0].error
    from instseg.config import ConfigError

    with pytest.raises(ConfigError, match="unknown setting 'nope'"):
        train_entries(["solov2:nano"], Protocol(data=demo, overrides=["nope=1"]), tmp_path / "o2",
                      progress=lambda *a: None)


def test_a_failing_entry_does_not_stop_the_others(tmp_path, demo, monkeypatch):
    from instseg import api

    calls = []

    def fake_train(cfg, resume_epochs=None):
        calls.append(cfg.architecture)
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(api, "train", fake_train)
    entries = train_entries(["rtmdet-ins:tiny", "solov2:nano"], Protocol(data=demo, epochs=1, imgsz=64),
                            tmp_path / "out", progress=lambda *a: None)
    assert calls == ["rtmdet-ins", "solov2"]
    assert [e.error for e in entries] == ["RuntimeError: CUDA out of memory (simulated)"] * 2


@pytest.mark.slow
def test_compare_two_tiny_architectures_end_to_end(tmp_path, demo, monkeypatch, capsys):
    from instseg import api
    from instseg.compare.report import render_table
    from instseg.compare.runner import compare

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cmp"
    p = Protocol(data=demo, epochs=1, imgsz=64, batch=2, device="cpu", workers=0)
    entries = train_entries(["rtmdet-ins:tiny", "solov2:nano"], p, out, progress=lambda *a: None)
    assert [e.error for e in entries] == [None, None], [e.error for e in entries]
    for e in entries:
        assert (e.root / "metrics.json").is_file() and e.root.parent == out
    doc = compare(entries, out, protocol={"imgsz": 64, "epochs": 1}, device="cpu", samples=200, seed=0,
                  latency_iters=8, latency_warmup=1, progress=lambda *a: None)
    saved = json.loads((out / "compare.json").read_text())
    assert saved["schema"] == "instseg.compare/1" and len(saved["runs"]) == 2 and saved["failed"] == []
    assert saved["protocol"]["gt_sha256"] == doc["protocol"]["gt_sha256"]
    for run in saved["runs"]:
        metrics = json.loads((out / run["run_dir"] / "metrics.json").read_text())
        assert run["metrics"]["segm"]["mAP"] == pytest.approx(metrics["segm_mAP"] or 0.0, abs=1e-9)
        assert metrics["gt_sha256"] == saved["protocol"]["gt_sha256"]  # recorded by the trainer itself
        lo, hi = run["ci"]["segm_mAP"]
        assert lo <= hi and 0.0 <= lo <= 1.0
        assert run["params"] > 1e5 and run["latency_ms"] > 0 and run["peak_rss_mb"] > 50
        assert run["gflops"] > 0 and "gflops_error" not in run
        lat = run["latency"]
        assert len(lat["per_image_ms"]) == lat["images"] == 8 and lat["batch"] == 1 and lat["warmup"] == 1
        assert lat["median_ms"] == pytest.approx(float(np.median(lat["per_image_ms"])), abs=1e-2)
        assert lat["median_ms"] <= lat["p90_ms"] <= max(lat["per_image_ms"]) + 1e-3
        assert len(run["pr"]["segm"]["recall"]) == 101
    assert saved["protocol"]["latency"]["images"] == 8 and saved["protocol"]["gflops"]["imgsz"] == 64
    assert len(saved["pairwise"]) == 1 and 0.0 <= saved["pairwise"][0]["p_a_greater"] <= 1.0
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("name,architecture") and len(rows) == 3
    table = render_table(saved)
    assert "rtmdet-ins-tiny" in table and "solov2-nano" in table and "P(row's mask mAP > column's)" in table

    # the same command again: nothing is retrained
    monkeypatch.setattr(api, "train", lambda *a, **k: pytest.fail("a finished entry was retrained"))
    again = train_entries(["rtmdet-ins:tiny", "solov2:nano"], p, out, progress=lambda *a: None)
    assert [e.resumed for e in again] == [True, True]
    # another protocol in the same folder is refused, not mixed in
    other = train_entries(["solov2:nano"], Protocol(data=demo, epochs=3, imgsz=64, device="cpu"), out,
                          progress=lambda *a: None)
    assert "another protocol" in other[0].error and "epochs 1 vs 3" in other[0].error


@pytest.mark.parametrize("seeds, expected", [
    (["--seeds", "0", "1", "2"], [0, 1, 2]),  # as the README writes it
    (["--seeds", "0,1,2"], [0, 1, 2]),
    (["--seeds", "0 1 2"], [0, 1, 2]),
    (["--seeds", "3", "--seeds", "4"], [3, 4]),
    (["--seeds=5", "6"], [5, 6]),
    ([], [0]),
])
def test_seeds_take_several_values_after_one_flag(tmp_path, monkeypatch, capsys, seeds, expected):
    from instseg.compare import runner
    from instseg.errors import InstsegError

    got = []

    def fake_train_entries(specs, p, out, **kw):
        got.append((list(specs), p.seeds))
        raise InstsegError("stopped before training")

    monkeypatch.setattr(runner, "train_entries", fake_train_entries)
    code, err = _cli(monkeypatch, capsys, "--data", str(tmp_path / "d.yaml"), "-a", "rtmdet-ins:tiny", *seeds,
                     "-a", "solov2:nano", "--out", str(tmp_path / "out"))
    assert code == 1 and "stopped before training" in err, err
    assert got == [(["rtmdet-ins:tiny", "solov2:nano"], expected)]


@pytest.mark.parametrize("seeds, bad", [(["--seeds", "x"], "'x'"), (["--seeds", "0", "1.5"], "'1.5'"),
                                        (["--seeds", "0,b"], "'b'"), (["--seeds", "0", "x"], "'x'")])
def test_non_integer_seed_is_one_line_naming_seeds(tmp_path, monkeypatch, capsys, seeds, bad):
    from instseg.compare import runner

    monkeypatch.setattr(runner, "train_entries", lambda *a, **k: pytest.fail("trained with a bad seed"))
    code, err = _cli(monkeypatch, capsys, "--data", str(tmp_path / "d.yaml"), "-a", "rtmdet-ins:tiny", *seeds)
    assert code == 2 and "Traceback" not in err
    [line] = [ln for ln in err.splitlines() if "--seeds" in ln and bad in ln and "integer" in ln]
    assert "RUN_DIRS" not in err
