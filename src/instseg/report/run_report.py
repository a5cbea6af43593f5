"""The report of one run folder: ``<run>/report/index.html`` with the metrics, the plots, the evaluation
pages and the dataset pages of the val split; plus Ultralytics' file names in the run folder itself
(``results.png``, ``confusion_matrix.png``, ``MaskPR_curve.png``, ``BoxPR_curve.png``).

Inputs read from the run folder: ``config.yaml`` (which data.yaml), ``results.csv``, ``metrics.json``,
``predictions/val.json``. The ground truth is rebuilt from the val split exactly as training built it
(``records_to_coco`` in scan order, ids 1..N), scored again by :func:`instseg.evaluation.evaluate` to get
the accumulated precision arrays the PR curves are drawn from.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from instseg.errors import DatasetError, InstsegError

CONF_MATRIX_THR = 0.25


@dataclass
class RunReport:
    """What was written (paths relative to the report folder) and how long it took."""

    index: Path
    seconds: float = 0.0
    pages: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _read_config(run: Path) -> dict:
    import yaml

    cfg_path = run / "config.yaml"
    if not cfg_path.exists():
        raise InstsegError(f"{run}: no config.yaml; is this an instseg run folder? "
                           "(`instseg report --data data.yaml --split val` reports a dataset alone)")
    try:
        return yaml.safe_load(cfg_path.read_text()) or {}
    except yaml.YAMLError as e:
        raise InstsegError(f"{cfg_path}: not valid YAML ({e}); restore the file the run wrote") from e


def _resolve_data(run: Path, cfg: dict, data: Path | None) -> Path:
    if data is not None:
        return Path(data)
    raw = cfg.get("data")
    if not raw:
        raise InstsegError(f"{run / 'config.yaml'}: no 'data' entry; pass --data path/to/data.yaml")
    path = Path(raw)
    for cand in (path, run / path):
        if cand.exists():
            return cand
    raise InstsegError(f"{run / 'config.yaml'}: data {raw} does not exist from here; pass --data path/to/data.yaml")


def load_val(data: Path, names_from: list[str] | None = None):
    """(records with image ids, class names, COCO ground truth) of the val split, as training built them."""
    from dataclasses import replace

    from instseg.data.checks import load_split
    from instseg.data.coco import records_to_coco
    from instseg.data.yaml_config import load_data_yaml

    spec = load_data_yaml(data)
    records, _ = load_split(spec, "val")
    gt = records_to_coco(records, spec.names)
    records = [replace(r, image_id=img["id"]) for r, img in zip(records, gt["images"])]
    return records, list(spec.names), gt


def _check_ids(results: list[dict], gt: dict, pred_path: Path, data: Path) -> None:
    ids = {img["id"] for img in gt["images"]}
    stray = {int(r["image_id"]) for r in results} - ids
    if stray:
        raise DatasetError(f"{pred_path}: image ids {sorted(stray)[:5]} are not images of the val split of {data} "
                           f"({len(ids)} images); was the dataset changed after training? pass the run's --data")


def evaluation_inputs(run: Path, data: Path):
    """(records, names, gt, results, Metrics with arrays) of a run's ``predictions/val.json``."""
    from instseg.evaluation import evaluate, load_results

    pred_path = run / "predictions" / "val.json"
    records, names, gt = load_val(data)
    results = load_results(pred_path)
    _check_ids(results, gt, pred_path, data)
    metrics = evaluate(gt, [dict(r) for r in results])
    return records, names, gt, results, metrics


def _metric_table(metrics) -> str:
    from instseg.report.html import fmt, table

    rows = []
    for kind, tm in metrics.types().items():
        s = tm.summary()
        rows.append([kind, *(fmt(s[k]) for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"))])
    return table(["type", "mAP50-95", "mAP50", "mAP75", "small", "medium", "large", "AR100"], rows, cls="metrics")


def write_run_report(run_root: str | Path, *, data: Path | None = None, log=None) -> RunReport:
    """Write ``run_root/report/`` and the Ultralytics-named plots in ``run_root``; returns what was written."""
    from instseg.engine.logger import read_results
    from instseg.io import atomic_write_text
    from instseg.report import plots
    from instseg.report.dataset_page import write_dataset_pages
    from instseg.report.eval_page import image_summary, match_images, write_eval_pages
    from instseg.report.html import esc, figure, page, table
    from instseg.report.matching import confusion_matrix

    t0 = time.perf_counter()
    run = Path(run_root)
    rep = run / "report"
    pdir = rep / "plots"
    cfg = _read_config(run)
    data = _resolve_data(run, cfg, data)
    model = f"{cfg.get('architecture', 'run')}-{cfg.get('model') or ''}".rstrip("-")
    title = model if run.name == model else f"{model} {run.name}"  # compare names its folders after the model
    out = RunReport(index=rep / "index.html")
    sections: list[str] = []
    figs: list[str] = []

    def add_plot(fig, stem: str, caption: str, copy_as: str | None = None) -> None:
        paths = plots.save(fig, pdir, stem)
        out.plots += [f"plots/{stem}.png", f"plots/{stem}.svg"]
        figs.append(figure(f"plots/{stem}.png", f"plots/{stem}.svg", caption))
        if copy_as:
            shutil.copyfile(paths["png"], run / copy_as)

    if (run / "results.csv").exists():
        rows = read_results(run / "results.csv")
        if rows:
            add_plot(plots.results_figure(rows), "results", "losses and metrics per epoch (results.csv)", "results.png")
            add_plot(plots.lr_figure(rows), "lr", "learning rate per epoch")
    if (run / "predictions" / "val.json").exists():
        records, names, gt, results, metrics = evaluation_inputs(run, data)
        sections.append(f"<h2>Metrics (instseg's evaluator, {metrics.num_images} val images, "
                        f"{metrics.num_predictions} predictions)</h2>{_metric_table(metrics)}")
        pr_json = {}
        for kind, tm, copy in (("segm", metrics.segm, "MaskPR_curve.png"), ("bbox", metrics.bbox, "BoxPR_curve.png")):
            if tm is None or tm.arrays is None:
                continue
            pr = plots.pr_data(tm.arrays, names)
            pr_json[kind] = pr
            what = "mask" if kind == "segm" else "box"
            for key, iou in (("iou50", "0.5"), ("iou75", "0.75")):
                add_plot(plots.pr_figure(pr[key]["per_class"], pr[key]["mean"], f"{what} PR curve, IoU {iou}"),
                         f"{kind}_pr_{key}", f"{what} precision-recall at IoU {iou}", copy if key == "iou50" else None)
        if metrics.segm is not None:
            add_plot(plots.bars_figure(metrics.segm.per_class, "Mask AP per class", "AP50-95",
                                       metrics.segm.per_class_ap50, "AP50"), "segm_per_class_ap", "mask AP per class")
        from instseg.data.coco import write_json_atomic

        write_json_atomic(rep / "pr.json", pr_json)
        cat_to_cls = {c["id"]: k for k, c in enumerate(gt["categories"])}
        images = match_images(records, results, cat_to_cls, rep)
        cm = confusion_matrix([([s.rle for s in e.gt], [s.cls for s in e.gt], [s.crowd for s in e.gt],
                                [p["segmentation"] for p in e.preds], [p["cls"] for p in e.preds],
                                [p["score"] for p in e.preds]) for e in images], len(names), conf=CONF_MATRIX_THR)
        add_plot(plots.confusion_figure(cm, names, CONF_MATRIX_THR), "confusion_matrix",
                 "confusion matrix (mask IoU >= 0.5, background row and column)", "confusion_matrix.png")
        pages = write_eval_pages(rep, images, names, title=f"Evaluation: {title}")
        out.pages += [p for ps in pages.values() for p in ps]
        s = image_summary(images)
        out.summary.update(s, metrics=metrics.to_dict(json_safe=True))
        links = " ".join(f'<a href="{esc(ps[0])}">{esc(o)}</a>' for o, ps in pages.items())
        sections.append(f"<h2>Evaluation pages</h2><p>{links} &middot; at score &ge; {s['threshold']}: "
                        f"{s['tp']} true positives, {s['fp']} false positives, {s['missed']} missed</p>")
    else:
        sections.append("<p>No predictions/val.json in this run (no val split?): no evaluation pages.</p>")
    ds = write_dataset_pages(rep, data, "val", overview="dataset/index.html", home="index.html", log=log)
    out.pages += [ds.overview, *ds.pages]
    sections.append(f'<h2>Dataset (val split)</h2><p><a href="{esc(ds.overview)}">{ds.images} images, '
                    f"{ds.instances} instances, {ds.findings} findings</a></p>")
    info = table(["key", "value"], [[k, str(cfg.get(k))] for k in ("architecture", "model", "data", "epochs",
                                                                    "imgsz", "batch") if k in cfg], cls="config")
    body = "".join(sections) + f'<h2>Plots</h2><div class="plots">{"".join(figs)}</div><h2>Config</h2>{info}'
    atomic_write_text(out.index, page(f"Run report: {title}", body, home="index.html"))
    out.seconds = time.perf_counter() - t0
    return out


def report_weight(folder: Path) -> float:
    """Total size of a report folder in MB."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6


__all__ = ["RunReport", "write_run_report", "evaluation_inputs", "load_val", "report_weight"]
