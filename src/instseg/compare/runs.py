"""Run folders as compare entries: read what a run wrote, find its ground truth, check that every entry of
one table was scored on the same one (the content hash of :mod:`instseg.evaluation.gt_hash`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from instseg.evaluation.gt_hash import gt_sha256
from instseg.errors import InstsegError


class CompareError(InstsegError):
    """The entries cannot be compared as given; the message names the run folder and the fix."""


@dataclass
class Entry:
    """One row of the table: a run folder (trained here or collected), or why there is none."""

    name: str
    architecture: str
    size: str
    seed: int = 0
    root: Path | None = None
    cfg: object | None = None  # the run's TrainConfig
    metrics_json: dict = field(default_factory=dict)
    error: str | None = None  # why the entry failed (training or scoring); None = ok
    resumed: bool = False  # finished earlier: not retrained
    trained_on: str | None = None  # where a Ray task trained it ("ray:<host>:pid<N>"); None = here

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def weights(self) -> Path | None:
        for name in ("best.pt", "last.pt"):
            if self.root is not None and (self.root / "weights" / name).is_file():
                return self.root / "weights" / name
        return None

    @property
    def epochs_done(self) -> int | None:
        """Epochs trained: metrics.json's ``epochs`` (Ultralytics backend), else the rows of results.csv."""
        if self.metrics_json.get("epochs") is not None:
            return int(self.metrics_json["epochs"])
        csv_path = None if self.root is None else self.root / "results.csv"
        if csv_path is None or not csv_path.is_file():
            return None
        from instseg.engine.logger import read_results

        return len(read_results(csv_path))

    @property
    def train_s(self) -> float | None:
        timing = self.metrics_json.get("timing") or {}
        if timing.get("train_s") is not None:
            return float(timing["train_s"])
        csv_path = None if self.root is None else self.root / "results.csv"
        if csv_path is None or not csv_path.is_file():
            return None
        from instseg.engine.logger import read_results

        rows = [r.get("time") for r in read_results(csv_path)]
        vals = [float(v) for v in rows if v not in (None, "")]
        return sum(vals) if vals else None


def read_run(path: Path) -> Entry:
    """An existing run folder as an entry; CompareError when it is not a finished run folder."""
    from instseg.config import TrainConfig, load_yaml

    root = Path(path)
    if not root.is_dir():
        raise CompareError(f"{root}: not a run folder (pass folders written by `instseg train`, e.g. "
                           "work_dirs/solov2-nano/exp)")
    if not (root / "metrics.json").is_file():
        raise CompareError(f"{root}: no metrics.json (the run did not finish); finish it with "
                           f"`instseg train --resume {root / 'weights' / 'last.pt'}` or leave it out")
    if not (root / "config.yaml").is_file():
        raise CompareError(f"{root}: no config.yaml, so its dataset is unknown; pass a folder written by instseg")
    try:
        metrics = json.loads((root / "metrics.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CompareError(f"{root / 'metrics.json'}:{e.lineno}: not valid JSON ({e.msg}); re-run the evaluation "
                           f"with `instseg eval --weights {root / 'weights' / 'best.pt'}`") from e
    cfg = load_yaml(TrainConfig, root / "config.yaml")
    if cfg.data is None:
        raise CompareError(f"{root / 'config.yaml'}: 'data' is not set, so the ground truth is unknown")
    size = str(metrics.get("size") or cfg.model or "")
    return Entry(name=f"{cfg.architecture}-{size}" if size else cfg.architecture, architecture=cfg.architecture,
                 size=size, seed=cfg.seed, root=root, cfg=cfg, metrics_json=metrics)


@dataclass
class GroundTruth:
    data: Path
    split: str
    gt: dict
    records: list
    names: list[str]
    sha256: str


_GT_CACHE: dict[tuple[str, str], GroundTruth] = {}


def ground_truth(data: Path, split: str = "val") -> GroundTruth:
    """The COCO ground truth instseg scores ``split`` of ``data`` on (the records in the engine's order, image
    ids 1..N, category ids 1..nc), with its hash. Cached per (data, split) within a process."""
    from instseg.data.coco import records_to_coco
    from instseg.engine.setup import dataset_names, load_records
    from instseg.errors import DatasetError

    key = (str(Path(data).resolve()), split)
    if key not in _GT_CACHE:
        records = load_records(Path(data), split, log=lambda *a: None)
        if not records:
            raise DatasetError(f"{data}: the {split} split has no usable images; compare scores on it")
        names = list(dataset_names(Path(data)))
        gt = records_to_coco(records, names, list(range(1, len(names) + 1)))
        from dataclasses import replace

        records = [replace(r, image_id=img["id"]) for r, img in zip(records, gt["images"])]
        _GT_CACHE[key] = GroundTruth(Path(data), split, gt, records, names, gt_sha256(gt))
    return _GT_CACHE[key]


def check_same_ground_truth(entries: list[Entry], split: str = "val") -> GroundTruth:
    """The one ground truth of every entry's dataset; CompareError naming two runs whose ground truths differ
    (or a run whose recorded ``gt_sha256`` no longer matches its dataset)."""
    first: tuple[Entry, GroundTruth] | None = None
    for e in entries:
        g = ground_truth(Path(e.cfg.data), split)
        recorded = e.metrics_json.get("gt_sha256")
        if recorded and recorded != g.sha256:
            raise CompareError(f"{e.root}: was scored on ground truth {recorded[:12]} but {e.cfg.data} ({split}) now "
                               f"gives {g.sha256[:12]}: the dataset changed since; re-evaluate the run or leave it out")
        if first is None:
            first = (e, g)
        elif g.sha256 != first[1].sha256:
            raise CompareError(f"{e.root} and {first[0].root} were scored on different ground truth ({e.cfg.data} "
                               f"{split}: {g.sha256[:12]} vs {first[0].cfg.data}: {first[1].sha256[:12]}); put only "
                               "runs of the same val images in one table")
    if first is None:
        raise CompareError("nothing to compare: give run folders, or --data with -a ARCH:SIZE entries")
    return first[1]


__all__ = ["CompareError", "Entry", "read_run", "GroundTruth", "ground_truth", "check_same_ground_truth"]
