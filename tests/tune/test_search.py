"""Real searches on a local Ray (2 CPUs) started here: 4 trials x 2 epochs of rtmdet-ins tiny on the demo
dataset at 64 px with Optuna TPE + ASHA, interrupted after 2 trials and resumed to 4; best.yaml retrained."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("ray.tune", reason="Ray Tune is not installed: pip install 'instseg[tune]'")
pytest.importorskip("optuna", reason="Optuna is not installed: pip install 'instseg[tune]'")

from instseg.config import TrainConfig, load_yaml  # noqa: E402
from instseg.tune.results import read_trials_csv  # noqa: E402
from instseg.tune.runner import TuneOptions, run_search  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from instseg.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo"), n_train=8, n_val=4, imgsz=64, seed=0)


def _options(data: Path, root: Path, **kw) -> TuneOptions:
    base = TrainConfig(data=data, architecture="rtmdet-ins", model="tiny", epochs=2, imgsz=64, batch=4,
                       workers=0, loggers=[], device="cpu")
    # train_loss: after 1 epoch at 64 px every mask mAP is 0 (a tie ASHA cannot cut); the loss always differs
    return TuneOptions(base=base, space=REPO / "configs/tune/default.yaml", trials=4, metric="train_loss",
                       root=root, name="exp", cpus_per_trial=1, max_concurrent=1, **kw)


def test_search_interrupted_resumed_stops_early_and_best_yaml_retrains(local_ray, demo_data, tmp_path):
    """One search of 4 trials: interrupted (as Ctrl+C does) after 2, resumed with Tuner.restore to 4."""
    from instseg import api

    exp = tmp_path / "exp"
    run_search(_options(demo_data, tmp_path, interrupt_after=2))
    rows = read_trials_csv(exp / "trials.csv")
    finished = {r["trial"]: r["lr0"] for r in rows if r["status"] in ("completed", "stopped (ASHA)")}
    assert len(finished) == 2, rows

    out = run_search(_options(demo_data, tmp_path, resume=True))
    rows = read_trials_csv(exp / "trials.csv")
    assert len(rows) == 4 and len({r["trial"] for r in rows}) == 4, rows
    assert all(r["status"] in ("completed", "stopped (ASHA)") for r in rows), rows
    assert {r["trial"]: r["lr0"] for r in rows if r["trial"] in finished} == finished  # kept, not rerun
    stopped = [r for r in rows if r["stopped_early"] == "True"]
    assert stopped and all(r["epochs"] == "1" and r["status"] == "stopped (ASHA)" for r in stopped)
    completed = [r for r in rows if r["status"] == "completed"]
    assert completed and all(r["epochs"] == "2" for r in completed)
    lr0s = {float(r["lr0"]) for r in rows}
    assert len(lr0s) == 4 and all(0.0005 <= v <= 0.02 for v in lr0s)
    for r in rows:  # every trial is an ordinary run folder
        run = Path(r["run"])
        assert run.parent == exp.resolve() and (run / "config.yaml").is_file() and (run / "results.csv").is_file()
        assert (run / "weights" / "last.pt").is_file()
    for r in completed:
        assert (Path(r["run"]) / "metrics.json").is_file()
    best = min(completed, key=lambda r: float(r["train_loss"]))
    assert best["best"] == "True" and out["best"]["trial"] == best["trial"]

    # best.yaml = the best trial's config.yaml, in a new run folder "best"; retrain it
    assert out["best_yaml"] == exp.resolve() / "best.yaml"
    cfg = load_yaml(TrainConfig, exp / "best.yaml")
    trial_cfg = load_yaml(TrainConfig, Path(best["run"]) / "config.yaml")
    assert cfg.schedule == trial_cfg.schedule and cfg.augment == trial_cfg.augment
    assert cfg.schedule.lr0 == pytest.approx(float(best["lr0"]), rel=1e-5)
    assert (cfg.name, cfg.project, cfg.epochs) == ("best", exp.resolve(), 2)
    result = api.train(cfg)
    assert result.run.root == exp.resolve() / "best" and result.epochs_done == 2
    assert (result.run.root / "metrics.json").is_file() and "segm_mAP" in result.metrics

    # trial folders are what compare and report read: collected side by side, scored on one ground truth
    import json

    from instseg.compare.runner import collect_entries, compare
    from instseg.report import write_run_report

    entries = collect_entries([Path(r["run"]) for r in completed] + [result.run.root])
    assert all(e.ok for e in entries), [e.error for e in entries]
    compare(entries, tmp_path / "cmp", protocol={"mode": "collect", "split": "val"}, device="cpu", samples=50,
            latency_iters=0, progress=lambda *a: None)
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert saved["failed"] == [] and len(saved["runs"]) == len(completed) + 1
    for run in saved["runs"]:
        metrics = json.loads((tmp_path / "cmp" / run["run_dir"] / "metrics.json").read_text())  # relative or not
        assert run["metrics"]["segm"]["mAP"] == pytest.approx(metrics["segm_mAP"] or 0.0, abs=1e-9)
    report = write_run_report(Path(best["run"]))
    assert report.index.is_file() and report.pages


def test_resume_without_an_experiment_says_so(tmp_path, demo_data):
    from instseg.config import ConfigError

    with pytest.raises(ConfigError, match="no experiment to resume"):
        run_search(_options(demo_data, tmp_path, resume=True))
