"""Wrong invocations, table-driven: each exits 1 (an InstsegError, one `error:` line) or 2 (a usage error)
with a message that names the valid choices or the fix, and never prints a traceback.

Runs ``instseg.cli.main`` in-process (what the ``instseg`` script runs), so the InstsegError -> one line
conversion is part of what is tested."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from instseg.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, demo_data) -> dict[str, Path]:
    """Small broken (and one sound) inputs, written once."""
    d = tmp_path_factory.mktemp("bad")
    f = {"missing": d / "missing.yaml", "data": demo_data}
    f["empty"] = d / "empty.yaml"
    f["empty"].write_text("")
    f["corrupt"] = d / "corrupt.yaml"
    f["corrupt"].write_text("epochs: 3\naugment: {mosaic: [\n")
    f["typo"] = d / "typo.yaml"
    f["typo"].write_text("data: d.yaml\nepochz: 3\n")
    f["list"] = d / "list.yaml"
    f["list"].write_text("- 1\n- 2\n")
    f["noval"] = d / "noval.yaml"
    root = demo_data.parent
    names = yaml.safe_load(demo_data.read_text())["names"]
    f["noval"].write_text(f"path: {root}\ntrain: images/train\nnames: {names!r}\n")
    f["coco"] = d / "ann.json"
    f["coco"].write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    f["badjson"] = d / "bad.json"
    f["badjson"].write_text("{not json")
    f["notckpt"] = d / "weights.pt"
    f["notckpt"].write_bytes(b"not a torch file")
    f["images"] = root / "images" / "val"
    f["project"] = d / "runs"
    return f


def _f(key):
    return lambda files: str(files[key])


# (argv with callables filled from `files`, exit code, text the message must contain)
CASES = [
    ("arch-typo", ["train", "--data", _f("data"), "-a", "solov3", "--dry-run"], 1, "did you mean 'solov2'?"),
    ("size-typo", ["train", "--data", _f("data"), "-a", "solov2", "-m", "nan", "--dry-run"], 1, "did you mean 'nano'?"),
    ("size-other-arch", ["train", "--data", _f("data"), "-a", "maskrcnn", "-m", "tiny", "--dry-run"], 1,
     "valid: r50-fpn, r50-fpn-v2"),
    ("recipe-typo", ["train", "--data", _f("data"), "--schedule", "stepp", "--dry-run"], 1, "did you mean 'step'?"),
    ("flag-typo", ["train", "--data", _f("data"), "--mosiac", "0.5", "--dry-run"], 1, "did you mean 'mosaic'?"),
    ("setting-typo", ["train", "--data", _f("data"), "hsvh=0.1", "--dry-run"], 1, "did you mean 'hsv_h'?"),
    ("out-of-range", ["train", "--data", _f("data"), "fliplr=1.5", "--dry-run"], 1, "fliplr=1.5 is out of range [0.0, 1.0]"),
    ("not-key-value", ["train", "--data", _f("data"), "mosaic", "--dry-run"], 1, "is not KEY=VALUE (e.g. mosaic=0.5)"),
    ("wrong-type", ["train", "--data", _f("data"), "epochs=many", "--dry-run"], 1, "epochs takes a int"),
    ("ambiguous", ["train", "--data", _f("data"), "recipe=step", "--dry-run"], 1, "augment.recipe, schedule.recipe"),
    ("not-yes-no", ["train", "--data", _f("data"), "--no-mosaic", "--dry-run"], 1, "not a yes/no setting"),
    ("flag-needs-value", ["train", "--data", _f("data"), "--dry-run", "--freeze"], 1, "--freeze needs a value"),
    ("optimizer", ["train", "--data", _f("data"), "optimizer=lion", "--dry-run"], 1, "valid: auto, SGD, AdamW, Adam"),
    ("best-metric", ["train", "--data", _f("data"), "best_metric=loss", "--dry-run"], 1, "valid: segm_mAP"),
    ("imgsz", ["train", "--data", _f("data"), "--imgsz", "100", "--dry-run"], 1, "multiple of 32"),
    ("epochs-zero", ["train", "--data", _f("data"), "--epochs", "0", "--dry-run"], 1, "epochs=0 must be >= 1"),
    ("no-data", ["train"], 2, "--data"),
    ("bad-int-flag", ["train", "--data", _f("data"), "--epochs", "ten"], 2, "Invalid value for '--epochs'"),
    ("config-missing", ["train", "--config", _f("missing")], 1, "run config not found"),
    ("config-empty", ["train", "--config", _f("empty")], 1, "is empty"),
    ("config-corrupt", ["train", "--config", _f("corrupt")], 1, "corrupt.yaml:3: not valid YAML"),
    ("config-typo", ["train", "--config", _f("typo")], 1, "typo.yaml:2: unknown TrainConfig key 'epochz' (did you mean"),
    ("config-list", ["train", "--config", _f("list")], 1, "must be a mapping"),
    ("resume-missing", ["train", "--resume", _f("missing")], 1, "checkpoint not found"),
    ("data-missing", ["train", "--data", _f("missing"), "-a", "tiny-test", "--device", "cpu", "--project",
                      _f("project")], 1, "missing.yaml"),
    ("data-no-val", ["train", "--data", _f("noval"), "-a", "tiny-test", "--device", "cpu", "--project",
                     _f("project")], 1, "no split 'val'"),
    ("coco-as-data", ["train", "--data", _f("coco"), "-a", "tiny-test", "--device", "cpu", "--project",
                      _f("project")], 1, "instseg convert coco2yolo"),
    ("not-a-checkpoint", ["predict", "--weights", _f("notckpt"), "--source", _f("images")], 1, "weights.pt"),
    ("predict-missing", ["predict", "--weights", _f("missing"), "--source", _f("images")], 1, "not found"),
    ("eval-nothing", ["eval"], 2, "--gt"),
    ("eval-bad-json", ["eval", "--gt", _f("badjson"), "--pred", _f("badjson")], 1, "bad.json"),
    ("eval-weights-no-data", ["eval", "--weights", _f("notckpt")], 2, "--weights needs --data"),
    ("list-models-typo", ["list-models", "solov3"], 1, "did you mean 'solov2'?"),
    ("unknown-command", ["trian"], 2, "No such command 'trian'"),
]


@pytest.mark.parametrize("argv,code,needle", [pytest.param(a, c, n, id=i) for i, a, c, n in CASES])
def test_wrong_invocations_exit_with_one_clear_line(files, argv, code, needle, monkeypatch, capsys, tiny_arch):
    monkeypatch.setattr(sys, "argv", ["instseg", *(a(files) if callable(a) else a for a in argv)])
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    text = out.out + out.err
    assert e.value.code == code, text
    assert "Traceback" not in text
    assert needle in text, text
    if code == 1:  # an InstsegError: exactly one line, on stderr
        lines = [ln for ln in out.err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), out.err


def test_at_least_25_cases():
    assert len(CASES) >= 25
