"""Static HTML reports (open from disk, zip and send): the dataset pages, a run's evaluation pages and
plots, and the comparison page of a compare folder. See ``instseg report --help``."""

from __future__ import annotations

from pathlib import Path

from instseg.errors import InstsegError


def write_run_report(run_root, *, data=None, log=None):
    """``run_root/report/index.html`` for one run folder (see :mod:`instseg.report.run_report`)."""
    from instseg.report.run_report import write_run_report as _write

    return _write(run_root, data=data, log=log)


def write_dataset_report(data: Path, split: str = "val", out: Path | None = None) -> Path:
    """The dataset pages of one split alone; ``out`` defaults to ``work_dirs/reports/<dataset>-<split>``."""
    from instseg.report.dataset_page import write_dataset_pages

    out = Path(out) if out is not None else Path("work_dirs") / "reports" / f"{Path(data).resolve().parent.name}-{split}"
    write_dataset_pages(out, Path(data), split, overview="index.html")
    return out / "index.html"


def write_compare_report(compare: Path, *, data: Path | None = None) -> Path:
    from instseg.report.compare_page import write_compare_report as _write

    return _write(compare, data=data)


def build_report(target: Path | None, *, data: Path | None = None, split: str = "val",
                 out: Path | None = None) -> Path:
    """What ``instseg report`` does: a compare folder (compare.json), a run folder (config.yaml), or with
    ``target`` None the dataset pages of ``data``/``split``. Returns the index.html to open."""
    if target is None:
        if data is None:
            raise InstsegError("give a run folder, a compare folder, or --data data.yaml (with --split)")
        return write_dataset_report(data, split, out)
    target = Path(target)
    if target.is_file() and target.name == "compare.json" or (target / "compare.json").exists():
        return write_compare_report(target, data=data)
    if (target / "config.yaml").exists():
        return write_run_report(target, data=data).index
    if not target.exists():
        raise InstsegError(f"{target}: no such folder; give a run folder (with config.yaml) or a compare folder")
    raise InstsegError(f"{target}: neither a run folder (config.yaml) nor a compare folder (compare.json); "
                       "for a dataset use `instseg report --data data.yaml --split val`")


__all__ = ["build_report", "write_run_report", "write_dataset_report", "write_compare_report"]
