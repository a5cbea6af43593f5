"""Wrong invocations, as a new user types them: each exits 1 (instseg's error) or 2 (usage error) with a
line that names the valid choices or the fix, and nothing prints a traceback. The CLI's own ``main()`` runs
(the code path of the installed ``instseg`` command), in-process so the table stays fast."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def run_cli(argv: list[str], capfd) -> tuple[int, str]:
    from instseg.cli import main

    old = sys.argv
    sys.argv = ["instseg", *argv]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    captured = capfd.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def files(tmp_path_factory, demo_data_module):
    """Broken and foreign files for the table below."""
    import torch

    root = tmp_path_factory.mktemp("bad")
    (root / "empty.yaml").write_text("")
    (root / "corrupt.yaml").write_text("names: [a, b\ntrain: [")
    (root / "noval.yaml").write_text(f"path: {demo_data_module.parent}\ntrain: images/train\nnames: [a]\n")
    (root / "coco.json").write_text('{"images": [], "annotations": [], "categories": []}')
    (root / "corrupt.json").write_text('{"images": [')
    (root / "text.pt").write_text("this is not a checkpoint")
    torch.save({"encoder.weight": torch.zeros(2)}, root / "foreign.pt")
    torch.save({"model": {"w": torch.zeros(2)}, "architecture": "solov2", "size": "nano", "names": ["a"]},
               root / "other_arch.pt")
    return root


@pytest.fixture(scope="module")
def demo_data_module(tmp_path_factory) -> Path:
    from instseg.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo_bad"), n_train=4, n_val=2, imgsz=64, seed=0)


D = "{demo}"  # placeholders filled per case
F = "{files}"

CASES = [
    # (id, argv, expected exit codes, substrings the message must contain)
    ("unknown-architecture", ["train", "--data", D, "-a", "solov3"], (1, 2), ["solov3", "solov2"]),
    ("unknown-size", ["train", "--data", D, "-a", "solov2", "-m", "huge"], (1, 2), ["huge", "nano"]),
    ("unknown-recipe", ["train", "--data", D, "-a", "solov2", "--schedule", "cosine"], (1, 2),
     ["cosine", "ultralytics"]),
    ("unknown-option", ["train", "--data", D, "--bogus"], (1, 2), ["bogus", "help-settings"]),
    ("override-without-value", ["train", "--data", D, "hsv_h"], (1, 2), ["hsv_h", "key=value"]),
    ("unknown-setting", ["train", "--data", D, "foo=1"], (1, 2), ["foo", "help-settings"]),
    ("out-of-range", ["train", "--data", D, "fliplr=1.5"], (1, 2), ["fliplr=1.5", "range"]),
    ("bad-number", ["train", "--data", D, "--epochs", "ten"], (2,), ["--epochs", "integer"]),
    ("zero-epochs", ["train", "--data", D, "--epochs", "0"], (1, 2), ["epochs", ">= 1"]),
    ("bad-imgsz", ["train", "--data", D, "--imgsz", "100"], (1, 2), ["imgsz", "multiple of 32"]),
    ("no-data", ["train"], (1, 2), ["--data"]),
    ("missing-data-yaml", ["train", "--data", F + "/nope.yaml"], (1,), ["nope.yaml"]),
    ("empty-data-yaml", ["train", "--data", F + "/empty.yaml", "--device", "cpu"], (1,), ["empty.yaml"]),
    ("corrupt-data-yaml", ["train", "--data", F + "/corrupt.yaml", "--device", "cpu"], (1,), ["corrupt.yaml"]),
    ("data-yaml-without-val", ["train", "--data", F + "/noval.yaml", "-a", "rtmdet-ins", "-m", "tiny",
                               "--device", "cpu", "--epochs", "1", "--imgsz", "64"], (1,), ["noval.yaml", "val"]),
    ("coco-json-as-data", ["train", "--data", F + "/coco.json", "--device", "cpu"], (1,), ["convert"]),
    ("bad-device", ["train", "--data", D, "-a", "rtmdet-ins", "-m", "tiny", "--device", "gpu0"], (1,),
     ["gpu0", "cpu"]),
    ("missing-resume", ["train", "--resume", F + "/nope.pt"], (1,), ["nope.pt", "not found"]),
    ("corrupt-resume", ["train", "--resume", F + "/text.pt"], (1,), ["text.pt"]),
    ("checkpoint-of-another-architecture", ["train", "--data", D, "-a", "rtmdet-ins", "-m", "tiny", "--weights",
                                            F + "/other_arch.pt", "--device", "cpu", "--epochs", "1",
                                            "--imgsz", "64"], (1,), ["other_arch.pt", "--architecture"]),
    ("missing-weights", ["predict", "--weights", F + "/nope.pt", "--source", D], (1,), ["nope.pt", "not found"]),
    ("foreign-weights", ["predict", "--weights", F + "/foreign.pt", "--source", D], (1,),
     ["foreign.pt", "--architecture/-a"]),
    ("text-as-weights", ["eval", "--weights", F + "/text.pt", "--data", D], (1,), ["text.pt"]),
    ("eval-weights-without-data", ["eval", "--weights", F + "/foreign.pt"], (2,), ["--data"]),
    ("eval-without-gt", ["eval", "--pred", F + "/coco.json"], (2,), ["--gt"]),
    ("eval-missing-gt", ["eval", "--gt", F + "/nope.json", "--pred", F + "/coco.json"], (1,), ["nope.json"]),
    ("eval-corrupt-gt", ["eval", "--gt", F + "/corrupt.json", "--pred", F + "/coco.json"], (1,), ["corrupt.json"]),
    ("eval-bad-iou-type", ["eval", "--gt", F + "/coco.json", "--pred", F + "/coco.json", "--iou-type", "keypoints"],
     (1, 2), ["keypoints", "segm"]),
    ("list-unknown-architecture", ["list-models", "solov3"], (1, 2), ["solov3", "solov2"]),
    ("doctor-missing-file", ["doctor", F + "/nope.yaml"], (1,), ["nope.yaml"]),
    ("convert-missing-coco", ["convert", "coco2yolo", "--coco", F + "/nope.json", "--images", F, "--out",
                              F + "/out"], (1, 2), ["nope.json"]),
    ("unknown-command", ["trian"], (2,), ["trian"]),
]


@pytest.mark.parametrize("argv,codes,expected", [pytest.param(a, c, e, id=i) for i, a, c, e in CASES])
def test_wrong_invocation_is_one_clear_line(argv, codes, expected, files, demo_data_module, capfd, tmp_path,
                                           monkeypatch):
    argv = [a.replace(D, str(demo_data_module)).replace(F, str(files)) for a in argv]
    monkeypatch.chdir(tmp_path)  # where the default work_dirs/ would go: nothing may be left there
    code, out = run_cli(argv, capfd)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert not left, f"a failed invocation left {left}"
    assert "Traceback" not in out, out
    assert code in codes, f"exit {code}:\n{out}"
    lines = [line for line in out.splitlines() if all(s.lower() in line.lower() for s in expected)]
    assert lines, f"no single line names {expected}:\n{out}"
    assert "internal error" not in out, out  # a user's mistake is never reported as instseg's bug


def test_the_table_is_large_enough():
    assert len(CASES) >= 25
