"""The run folder, identical for every backend (see DESIGN.md)::

    work_dirs/<architecture>-<size>/<run-name>/
      config.yaml  weights/best.pt  weights/last.pt  results.csv  metrics.json  predictions/val.json  events.*
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config_yaml(self) -> Path:
        return self.root / "config.yaml"

    @property
    def weights_dir(self) -> Path:
        return self.root / "weights"

    @property
    def best(self) -> Path:
        return self.weights_dir / "best.pt"

    @property
    def last(self) -> Path:
        return self.weights_dir / "last.pt"

    @property
    def results_csv(self) -> Path:
        return self.root / "results.csv"

    @property
    def metrics_json(self) -> Path:
        return self.root / "metrics.json"

    @property
    def predictions_dir(self) -> Path:
        return self.root / "predictions"

    @property
    def val_predictions(self) -> Path:
        return self.predictions_dir / "val.json"

    def make(self) -> "RunDir":
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        self.predictions_dir.mkdir(parents=True, exist_ok=True)
        return self


def default_project(architecture: str, size: str, root: Path = Path("work_dirs")) -> Path:
    return root / f"{architecture}-{size}"


def next_run_dir(project: Path, name: str = "exp", exist_ok: bool = False, create: bool = True) -> RunDir:
    """``project/name``, or ``name2``, ``name3``... if it exists (as Ultralytics increments), unless exist_ok.

    With ``create`` (the default) the folder is claimed atomically with ``os.mkdir``: two runs started at the
    same moment with the same name get two folders (``exp`` and ``exp2``), never one shared folder; a name
    taken between the look and the mkdir moves on to the next number.
    """
    project = Path(project)
    candidate = project / name
    if exist_ok:
        if create:
            candidate.mkdir(parents=True, exist_ok=True)
        return RunDir(candidate)
    stem = re.sub(r"\d+$", "", name) or name
    if create:
        project.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = candidate if n == 1 else project / f"{stem}{n}"
        n += 1
        if path.exists() or path.is_symlink():
            continue
        if not create:
            return RunDir(path)
        try:
            os.mkdir(path)
        except FileExistsError:  # another process took it first
            continue
        return RunDir(path)


def missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet (deepest first): what creating it would add."""
    out = []
    for p in [Path(path), *Path(path).parents]:
        if p.exists() or p.is_symlink():
            break
        out.append(p)
    return out


def _only_start_files(root: Path) -> bool:
    """True when ``root`` holds nothing but what starting a run writes before its first epoch: config.yaml,
    a results.csv of at most its header, TensorBoard event files, the empty weights/ and predictions/."""
    for entry in root.iterdir():
        if entry.is_symlink():
            return False
        if entry.is_dir():
            if entry.name not in ("weights", "predictions") or any(entry.iterdir()):
                return False
        elif entry.name == "results.csv":
            with open(entry, "rb") as f:
                if len(f.read(1 << 16).splitlines()) > 1:
                    return False
        elif entry.name != "config.yaml" and not entry.name.startswith("events.out.tfevents."):
            return False
    return True


def remove_failed_start(run: RunDir, created: list[Path]) -> bool:
    """After a run failed to start: delete ``run.root`` when this start created it (it is in ``created``,
    from :func:`missing_folders` before the folder was made) and it holds only what the start wrote, then the
    other folders of ``created`` left empty. A folder that existed before, or that holds anything else (a
    checkpoint, an epoch's results), is kept. True when the run folder was removed."""
    root = Path(run.root)
    if root not in created or not root.is_dir() or not _only_start_files(root):
        return False
    shutil.rmtree(root, ignore_errors=True)
    for folder in created:
        if folder != root:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
    return not root.exists()
