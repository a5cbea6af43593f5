"""The ``instseg`` command line (Typer).

Each command is a thin function: it parses options into a typed config and calls one library function.
Heavy modules (torch, frameworks) are imported inside the command bodies so ``instseg --help`` stays fast.
Library errors derive from :class:`instseg.errors.InstsegError`; they are printed as one clear message and
exit 1 (2 for usage errors) instead of a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from instseg.errors import InstsegError

app = typer.Typer(
    name="instseg",
    help="Train, evaluate and compare instance-segmentation models on your own data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
convert_app = typer.Typer(help="Convert datasets between YOLO, COCO, LabelMe and mask formats.", no_args_is_help=True)
viz_app = typer.Typer(help="Look at what the model will see.", no_args_is_help=True)
app.add_typer(convert_app, name="convert")
app.add_typer(viz_app, name="viz")


# ----------------------------------------------------------------------------------------------- list-models
@app.command("list-models")
def list_models_cmd(
    architecture: Optional[str] = typer.Argument(None, help="Only this architecture."),
) -> None:
    """List every architecture and size, its backend, and whether that backend is installed."""
    from instseg.listing import render_model_table

    typer.echo(render_model_table(architecture))


# -------------------------------------------------------------------------------- doctor (foundation: data)
@app.command("doctor")
def doctor_cmd(
    target: Optional[Path] = typer.Argument(
        None, help="A data.yaml or a COCO .json to check (same as --data / --coco).", show_default=False
    ),
    data: Optional[Path] = typer.Option(
        None, "--data", "-d", help="A YOLO data.yaml to check (omit to check only the environment)."
    ),
    coco: Optional[Path] = typer.Option(None, "--coco", help="A COCO instance JSON to check instead of/besides --data."),
    images: Optional[Path] = typer.Option(
        None, "--images", help="Folder of the --coco images (default: the JSON's folder)."
    ),
    show_all: bool = typer.Option(False, "--all", help="Show every finding, not only the first of each kind."),
    limit: int = typer.Option(5, "--limit", min=1, help="How many findings of each kind to show."),
) -> None:
    """Check the environment (Python, torch, CUDA, optional backends) and a dataset; exit 1 on fatal problems.

    Each finding names the file and line and says what instseg does about it (line skipped, clipped,
    image used as background...). The scan is cached, so a second run on an unchanged dataset is fast.
    """
    from instseg.doctor import run_doctor

    if target is not None:
        if target.suffix.lower() == ".json":
            coco = coco or target
        else:
            data = data or target
    text, code = run_doctor(data, show_all=show_all, limit=limit, coco=coco, images=images)
    typer.echo(text)
    raise typer.Exit(code)


# ------------------------------------------------------------------------------ convert (foundation: convert)


_COPY_HELP = (
    "Copy the images into the output (default: a self-contained dataset that survives moving or deleting "
    "the source, and works where links do not) or symlink them (no extra disk space)."
)


@convert_app.command("yolo2coco")
def convert_yolo2coco_cmd(
    data: Path = typer.Option(..., "--data", help="The dataset's data.yaml (YOLO polygon or box labels)."),
    out: Path = typer.Option(..., "--out", help="Output folder: one COCO JSON per split (train.json, ...)."),
    split: Optional[list[str]] = typer.Option(None, "--split", help="Only this split (repeatable)."),
) -> None:
    """Write one COCO instance JSON per split of a YOLO dataset (ids from 1, areas from the masks)."""
    from instseg.data.convert import format_findings, yolo2coco

    findings: list = []
    for name, path in yolo2coco(data, out, splits=split or None, findings=findings).items():
        typer.echo(f"{name}: {path}")
    for line in format_findings(findings):
        typer.echo(line)


@convert_app.command("coco2yolo")
def convert_coco2yolo_cmd(
    coco: list[Path] = typer.Option(..., "--coco", help="COCO JSON; repeat for several splits."),
    images: Optional[list[Path]] = typer.Option(
        None, "--images", help="Folder of each JSON's images, in --coco order (default: the JSON's folder)."
    ),
    split: Optional[list[str]] = typer.Option(
        None, "--split", help="Split name of each --coco (default: guessed from its name/folder, else train)."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder: data.yaml, images/<split>, labels/<split>."),
    copy: bool = typer.Option(True, "--copy/--symlink", help=_COPY_HELP),
) -> None:
    """Convert COCO JSON (polygons, RLE, several parts, holes) into a YOLO segmentation dataset.

    Instances with several parts or holes become one polygon joined by zero-width bridges; the mask IoU
    kept per instance is reported. Crowd regions are dropped (YOLO has no ignore regions).
    """
    from instseg.data.convert import coco2yolo

    report = coco2yolo(coco, images or None, out, splits=split or None, symlink=not copy)
    typer.echo(report.summary())


@convert_app.command("labelme2yolo")
def convert_labelme2yolo_cmd(
    input_dir: Path = typer.Option(..., "--input", help="Folder of LabelMe JSON files (recursive)."),
    out: Path = typer.Option(..., "--out", help="Output folder: data.yaml, images/<split>, labels/<split>."),
    names: Optional[str] = typer.Option(
        None, "--names", help="Comma-separated class names fixing the class order (default: sorted labels)."
    ),
    val: float = typer.Option(0.0, "--val", min=0.0, max=1.0, help="Fraction of images for the val split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the train/val split."),
    copy: bool = typer.Option(True, "--copy/--symlink", help=_COPY_HELP),
) -> None:
    """Convert LabelMe annotations (polygon, rectangle, circle, mask shapes) into a YOLO dataset.

    Shapes sharing a group_id and label are one instance. line, point and other shape types are reported
    and skipped. Images embedded in the JSON (imageData) are written out.
    """
    from instseg.data.labelme import labelme2yolo

    name_list = [n.strip() for n in names.split(",") if n.strip()] if names else None
    report = labelme2yolo(input_dir, out, names=name_list, val=val, seed=seed, symlink=not copy)
    typer.echo(report.summary())


@convert_app.command("masks2coco")
def convert_masks2coco_cmd(
    images: Path = typer.Option(..., "--images", help="Folder of the images."),
    masks: Path = typer.Option(
        ..., "--masks",
        help="Folder of masks. Per image <stem>: an instance-id PNG <stem>.png (8/16-bit, 0 = background, "
        "each other value one instance), or binary PNGs <stem>_<k>.png or <stem>/<k>.png (one per instance).",
    ),
    out: Path = typer.Option(..., "--out", help="The COCO JSON to write (masks as compressed RLE)."),
    class_map: Optional[Path] = typer.Option(
        None, "--class-map", help="YAML/JSON mapping '<stem>/<k>: class name' for instance k of image <stem>."
    ),
    class_name: Optional[str] = typer.Option(
        None, "--class-name", help="Class of every instance (or those the class map omits); default object."
    ),
    mask_pattern: Optional[str] = typer.Option(
        None, "--mask-pattern",
        help="File name of an image's instance-id mask, {stem} = image name without extension (e.g. "
        "'{stem}_label.png'); tried before <stem>.png, <stem>_mask.png, <stem>-mask.png, <stem>_masks.png, "
        "<stem>_instanceIds.png and Cityscapes' *_gtFine_instanceIds.png.",
    ),
) -> None:
    """Build a COCO JSON from instance-id PNGs or binary per-instance PNGs."""
    from instseg.data.convert import format_findings
    from instseg.data.masks2coco import masks2coco

    path, findings = masks2coco(images, masks, out, class_map=class_map, class_name=class_name,
                                mask_pattern=mask_pattern)
    typer.echo(f"wrote {path}")
    for line in format_findings(findings):
        typer.echo(line)


# ------------------------------------------------------------------------------------ eval (foundation: eval)
@app.command("eval")
def eval_cmd(
    gt: Optional[Path] = typer.Option(
        None, "--gt", help="COCO ground-truth JSON (e.g. from `instseg convert yolo2coco`)."
    ),
    pred: Optional[Path] = typer.Option(
        None, "--pred", help="COCO results JSON: list of {image_id, category_id, score, bbox, segmentation (RLE)}."
    ),
    iou_type: list[str] = typer.Option(
        ["segm", "bbox"], "--iou-type", help="IoU type to evaluate: segm and/or bbox (repeat the option)."
    ),
    engine: str = typer.Option(
        "faster", help="faster (faster-coco-eval) or pycocotools (the reference); same numbers."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the metrics as JSON to this file."),
    weights: Optional[Path] = typer.Option(
        None, "--weights", help="Instead of --gt/--pred: predict with this instseg checkpoint on --data --split."
    ),
    data: Optional[Path] = typer.Option(None, "--data", help="data.yaml of the split to score (with --weights)."),
    split: str = typer.Option("val", "--split", help="Split of --data to score (with --weights)."),
    device: str = typer.Option("", "--device", help="cpu, 0, ... (with --weights); default: CUDA if available."),
    max_det: int = typer.Option(100, "--max-det", help="Detections per image (with --weights)."),
    architecture: Optional[str] = typer.Option(None, "--architecture", "-a",
                                               help="With --weights: architecture of a foreign checkpoint."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="With --weights: size of a foreign checkpoint."),
    names: Optional[str] = typer.Option(None, "--names", help="With --weights: class names (default: --data's)."),
) -> None:
    """Score predictions with COCO segm and bbox AP/AR and per-class AP: `instseg eval --gt val.json --pred results.json`
    or `instseg eval --weights best.pt --data data.yaml --split val`."""
    if weights is not None:  # the form owned by the train / predict section below
        _eval_weights_cmd(weights, data, split, device, out, max_det, architecture, model, names)
        return
    if gt is None or pred is None:
        raise typer.BadParameter(
            "give both --gt (COCO ground truth) and --pred (COCO results JSON), "
            "or --weights with --data (and --split) to predict and score",
            param_hint="'--gt' / '--pred'",
        )
    from instseg.evaluation import evaluate

    metrics = evaluate(gt, pred, iou_types=iou_type, engine=engine)
    typer.echo(metrics.table())
    if out is not None:
        typer.echo(f"metrics written to {metrics.save(out)}")



def _eval_fast(argv: list[str]) -> bool:
    """Run ``instseg eval --gt A --pred B [--iou-type T ...] [--engine E] [--out F]`` without Typer's parser.

    Typer builds a pydantic validator for every option of a command before running it: about 50 ms of
    imports and schema building, a tenth of a whole ``instseg eval`` on 12,800 predictions. This parser reads
    the options from ``eval_cmd``'s own signature (names, defaults and types are declared once) and accepts
    only the plain form: ``--name value`` or ``--name=value`` of Path/str/int options, both --gt and --pred,
    no --weights. Anything else (help, a typo, a bad value, the --weights form) returns False untouched, and
    Typer parses it as usual, with its usual messages. Returns True when the command ran.
    """
    if not argv or argv[0] != "eval":
        return False
    import inspect
    import types
    import typing

    command = inspect.unwrap(eval_cmd)
    hints = typing.get_type_hints(command)
    options: dict[str, tuple[str, type]] = {}  # --flag -> (parameter name, value type)
    repeatable: set[str] = set()
    values: dict[str, object] = {}
    for name, param in inspect.signature(command).parameters.items():
        kind = hints[name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # Optional[X], X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if typing.get_origin(kind) is list:
            repeatable.add(name)
            kind = typing.get_args(kind)[0]
        if kind not in (Path, str, int):
            return False  # a flag or a type this parser does not convert: Typer handles the command
        for decl in getattr(param.default, "param_decls", None) or ("--" + name.replace("_", "-"),):
            options[decl] = (name, kind)
        values[name] = getattr(param.default, "default", param.default)
    given: dict[str, list] = {}
    rest = argv[1:]
    while rest:
        flag, eq, value = rest.pop(0).partition("=")
        if flag not in options or (not eq and not rest):
            return False
        if not eq:
            value = rest.pop(0)
        name, kind = options[flag]
        if value.startswith("-") and kind is not int:
            return False  # e.g. `--out --gt`: a missing value, which Typer words better
        try:
            given.setdefault(name, []).append(kind(value))
        except ValueError:
            return False
    if "gt" not in given or "pred" not in given or "weights" in given:
        return False
    values.update({name: items if name in repeatable else items[-1] for name, items in given.items()})
    if any(v is ... for v in values.values()):
        return False  # a required option not given: Typer's message
    import gc

    was_enabled = gc.isenabled()
    gc.disable()  # the command's imports and parsed JSON make no reference cycles worth collecting
    try:
        eval_cmd(**values)
    finally:
        if was_enabled:
            gc.enable()
    return True


# ----------------------------------------------------------------------- train / predict (engine + backends)
def _setting_help(key: str, extra: str = "") -> str:
    """A flag's help: the field's docstring and its dataclass default (config.py is the one source)."""
    from instseg.config_help import field_help

    return field_help(key, extra)


_TRAIN_FLAGS = {"data": "--data", "architecture": "--architecture/-a", "model": "--model/-m", "epochs": "--epochs",
                "imgsz": "--imgsz", "batch": "--batch", "device": "--device", "workers": "--workers",
                "name": "--name", "project": "--project", "resume": "--resume", "weights": "--weights",
                "pretrained": "--pretrained", "schedule.recipe": "--schedule", "schedule.lr0": "--lr",
                "seed": "--seed", "dry_run": "--dry-run"}


def _help_settings(value: bool) -> None:
    if value:
        from instseg.config_help import settings_help

        typer.echo(settings_help(_TRAIN_FLAGS), nl=False)
        raise typer.Exit(0)


def _split_train_args(args: list[str]) -> tuple[list[str], list[str]]:
    """The extra command-line words of `instseg train`: (KEY=VALUE items, flag items as KEY=VALUE).

    ``--key VALUE`` and ``--key=VALUE`` set any setting as a flag; a boolean setting also takes ``--key`` /
    ``--no-key``. Unknown names fail in :func:`instseg.config.resolve_key` with the closest valid one."""
    from instseg.config import ConfigError, field_type, resolve_key

    items, flags, i = [], [], 0
    while i < len(args):
        word = args[i]
        i += 1
        if word.startswith("--") and len(word) > 2:
            key, sep, value = word[2:].partition("=")
            if not sep:
                negated = key[:3] in ("no-", "no_") and not _is_setting(key) and _is_setting(key[3:])
                if negated:
                    key = key[3:]
                section, name = resolve_key(key, word)
                if field_type(section, name).split("|")[0].strip() == "bool":
                    value = "false" if negated else "true"
                elif negated:
                    raise ConfigError(f"{word}: {key} is not a yes/no setting; give {key}=VALUE")
                elif i < len(args):
                    value, i = args[i], i + 1
                else:
                    raise ConfigError(f"{word} needs a value (e.g. {word} 0.5)")
            flags.append(f"{key}={value}")
        elif word.startswith("-") and not word[1:2].isdigit():
            raise ConfigError(f"unknown option {word!r}; settings are KEY=VALUE or --key VALUE "
                              f"(`instseg train --help-settings` lists them)")
        elif "=" in word:
            items.append(word)
        else:
            raise ConfigError(f"{word!r} is not KEY=VALUE (e.g. mosaic=0.5); "
                              f"`instseg train --help-settings` lists the settings")
    return items, flags


def _is_setting(key: str) -> bool:
    from instseg.config import ConfigError, resolve_key

    try:
        resolve_key(key)
        return True
    except ConfigError:
        return False


@app.command("train", options_metavar="[OPTIONS] [KEY=VALUE]...",
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_cmd(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Start from this YAML: any run's config.yaml reproduces that run (or a file "
        "with only some settings). KEY=VALUE goes on top of it, flags on top of both."),
    data: Optional[Path] = typer.Option(None, "--data", help=_setting_help("data")),
    architecture: Optional[str] = typer.Option(None, "--architecture", "-a", help=_setting_help("architecture")),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_setting_help("model")),
    epochs: Optional[int] = typer.Option(None, "--epochs", help=_setting_help("epochs", "With --resume: extend the run to N.")),
    imgsz: Optional[int] = typer.Option(None, "--imgsz", help=_setting_help("imgsz")),
    batch: Optional[int] = typer.Option(None, "--batch", help=_setting_help("batch")),
    device: Optional[str] = typer.Option(None, "--device", help=_setting_help("device")),
    workers: Optional[int] = typer.Option(None, "--workers", help=_setting_help("workers")),
    name: Optional[str] = typer.Option(None, "--name", help=_setting_help("name")),
    project: Optional[Path] = typer.Option(None, "--project", help=_setting_help("project")),
    resume: Optional[Path] = typer.Option(None, "--resume", help=_setting_help("resume")),
    weights: Optional[Path] = typer.Option(None, "--weights", help=_setting_help("weights")),
    pretrained: Optional[bool] = typer.Option(None, "--pretrained/--no-pretrained", help=_setting_help("pretrained"),
                                              show_default=False),
    schedule: Optional[str] = typer.Option(None, "--schedule", help=_setting_help("schedule.recipe")),
    lr: Optional[float] = typer.Option(None, "--lr", help=_setting_help("schedule.lr0")),
    seed: Optional[int] = typer.Option(None, "--seed", help=_setting_help("seed")),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved configuration and exit."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the run's HTML report at the end."),
    logger: Optional[list[str]] = typer.Option(
        None, "--logger", help="tensorboard (default), mlflow, wandb; repeat or comma-separate (none: off)."),
    force: bool = typer.Option(False, "--force", help="With --resume: continue even though the dataset changed."),
    help_settings: bool = typer.Option(False, "--help-settings", is_eager=True, callback=_help_settings,
                                       help="List every setting (KEY=VALUE) with its default and exit."),
) -> None:
    """Train a model: `instseg train --data data.yaml -a maskrcnn -m r50-fpn-v2 --epochs 50 --imgsz 640 --batch 4`.

    Every other setting is KEY=VALUE (`mosaic=0.5 hsv_h=0.02 schedule.gamma=0.5`) or the same as a flag
    (`--mosaic 0.5`, `--cos-lr`, `--no-ema`); `--help-settings` lists them all with their defaults.
    Precedence: defaults < --config FILE < KEY=VALUE < flags. Check the result with --dry-run.
    """
    from dataclasses import replace

    from instseg import api
    from instseg.config import TrainConfig, apply_overrides, apply_values, load_run_config

    items, flag_items = _split_train_args(list(ctx.args))
    cfg = load_run_config(config) if config is not None else TrainConfig()
    cfg = apply_overrides(cfg, items)
    cfg = apply_overrides(cfg, flag_items)
    explicit = {"data": data, "architecture": architecture, "model": model, "epochs": epochs, "imgsz": imgsz,
                "batch": batch, "device": device, "workers": workers, "name": name, "project": project,
                "resume": resume, "weights": weights, "pretrained": pretrained, "schedule.recipe": schedule,
                "schedule.lr0": lr, "seed": seed, "dry_run": True if dry_run else None}
    cfg = apply_values(cfg, {k: v for k, v in explicit.items() if v is not None},
                       {k: f"{_TRAIN_FLAGS[k]} {v}" for k, v in explicit.items()})
    if logger:
        cfg = replace(cfg, loggers=_logger_names(logger))
    if cfg.resume is None and cfg.data is None:
        raise typer.BadParameter("give --data path/to/data.yaml (or --config run/config.yaml, or --resume "
                                 "path/to/last.pt)", param_hint="'--data'")
    if cfg.dry_run:
        api.dry_run(cfg)
        return
    result = api.train(cfg, resume_epochs=epochs if cfg.resume is not None else None, force=force)
    typer.echo(f"run folder: {result.run.root}  (best: {result.best}, last: {result.last})")
    _finish_run(result.run.root, cfg, report=not no_report)  # report + loggers' final metrics (report section)


_FOREIGN_HELP = "Architecture of a foreign checkpoint (MMDetection/torchvision file), when it is not inferred."


@app.command("predict")
def predict_cmd(
    weights: Path = typer.Option(..., "--weights", help="An instseg checkpoint (best.pt / last.pt)."),
    source: Path = typer.Option(..., "--source", help="An image or a folder of images."),
    out: Path = typer.Option(Path("predictions"), "--out", help="Output folder (predictions.json, overlays/)."),
    conf: float = typer.Option(0.25, "--conf", help="Score threshold."),
    max_det: int = typer.Option(100, "--max-det", help="Detections per image."),
    imgsz: Optional[int] = typer.Option(None, "--imgsz", help="Input size (default: the training size)."),
    device: str = typer.Option("", "--device", help="cpu, 0, ..."),
    overlays: bool = typer.Option(True, "--overlays/--no-overlays", help="Also write overlay images."),
    architecture: Optional[str] = typer.Option(None, "--architecture", "-a", help=_FOREIGN_HELP),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Size of a foreign checkpoint (default: inferred)."),
    data: Optional[Path] = typer.Option(None, "--data", help="data.yaml whose class names a foreign checkpoint uses."),
    names: Optional[str] = typer.Option(None, "--names", help="Comma-separated class names (instead of --data)."),
) -> None:
    """Predict images: COCO results JSON (RLE masks at original size) and overlay images under --out.

    --weights takes an instseg .pt, an Ultralytics YOLO-seg .pt, an MMDetection .pth of rtmdet-ins/solov2 or a
    torchvision Mask R-CNN state dict (class names from the file, --data, --names, or COCO's for 80 classes)."""
    from instseg import api

    cfg = _predict_config(imgsz=imgsz, conf=conf, max_det=max_det, device=device, architecture=architecture,
                          model=model, names=names, data=data)
    path = api.predict(weights, source, out, cfg, overlays=overlays)
    typer.echo(f"wrote {path}")


def _predict_config(*, names: Optional[str], data: Optional[Path], **kw):
    from instseg import api
    from instseg.contract import PredictConfig

    name_list = [n.strip() for n in names.split(",") if n.strip()] if names else None
    return api.with_names(PredictConfig(names=name_list, **kw), data)


def _eval_weights_cmd(weights: Path, data: Optional[Path], split: str, device: str, out: Optional[Path],
                      max_det: int = 100, architecture: Optional[str] = None, model: Optional[str] = None,
                      names: Optional[str] = None) -> None:
    """`instseg eval --weights best.pt --data data.yaml --split val` (called by the eval command above)."""
    if data is None:
        raise typer.BadParameter("--weights needs --data path/to/data.yaml", param_hint="'--data'")
    from instseg import api

    cfg = _predict_config(conf=0.001, device=device, max_det=max_det, architecture=architecture, model=model,
                          names=names, data=data)
    metrics = api.evaluate_weights(weights, data, split, cfg)
    typer.echo(metrics.table())
    if out is not None:
        typer.echo(f"metrics written to {metrics.save(out)}")



# ----------------------------------------------------------------------------------- report (issue 12)
def _logger_names(values: Optional[list[str]]) -> list[str]:
    from instseg.engine.loggers import parse_logger_names

    return parse_logger_names(values or [])


def _finish_run(run_root: Path, cfg, report: bool = True) -> None:
    """End of `instseg train`: the HTML report, then the loggers' final metrics and report artifact; the
    last line printed names the file to open."""
    import os

    from instseg.engine.loggers import finish_run

    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 alone writes the report and closes loggers
        return
    index = None
    if report and (Path(run_root) / "config.yaml").exists():
        from instseg.report import write_run_report

        index = write_run_report(run_root).index
    finish_run(run_root, getattr(cfg, "loggers", ()), report_dir=index.parent if index else None)
    if index is not None:
        typer.echo(f"report: {index}")


@app.command("report")
def report_cmd(
    target: Optional[Path] = typer.Argument(
        None, help="A run folder (config.yaml) or a compare folder (compare.json).", show_default=False),
    data: Optional[Path] = typer.Option(None, "--data", help="A data.yaml: its --split alone, or the dataset of TARGET."),
    split: str = typer.Option("val", "--split", help="Split of --data for the dataset pages."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder of a dataset report (default work_dirs/reports/...)."),
) -> None:
    """Static HTML report: `instseg report RUN_DIR`, `instseg report COMPARE_DIR`, or
    `instseg report --data data.yaml --split val`. Open the index.html it names; no server needed."""
    import time

    from instseg.report import build_report
    from instseg.report.run_report import report_weight

    t0 = time.perf_counter()
    index = build_report(target, data=data, split=split, out=out)
    typer.echo(f"{report_weight(index.parent):.1f} MB in {time.perf_counter() - t0:.1f} s")
    typer.echo(f"report: {index}")


# ------------------------------------------------------------------------------------- export (issue 15: ONNX)
@app.command("export")
def export_cmd(
    weights: Path = typer.Option(..., "--weights", help="best.pt of a run (instseg or Ultralytics checkpoint)."),
    fmt: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: beside --weights, .onnx)."),
    imgsz: Optional[int] = typer.Option(None, "--imgsz", help="Square input size (default: the training size)."),
    dynamic: bool = typer.Option(False, "--dynamic", help="Free batch, height and width (multiples of 32)."),
    half: bool = typer.Option(False, "--half", help="FP16 graph (CUDA only)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    simplify: bool = typer.Option(False, "--simplify", help="Simplify the graph with onnxsim."),
    device: str = typer.Option("", "--device", help="cpu, 0, ... (the device the graph is traced on)."),
    max_det: int = typer.Option(100, "--max-det", help="Detections the Mask R-CNN graph keeps (in-graph NMS)."),
) -> None:
    """Export a trained model to ONNX with its metadata; `instseg predict/eval --weights model.onnx` run it in
    onnxruntime."""
    from instseg.export import export_model

    path, meta = export_model(weights, out, fmt=fmt, imgsz=imgsz, dynamic=dynamic, half=half, opset=opset,
                              simplify=simplify, device=device, max_det=max_det)
    parity = ", ".join(f"{k} {v:.2g}" if isinstance(v, float) else f"{k} {v}" for k, v in meta["parity"].items())
    typer.echo(f"wrote {path} ({meta['architecture']} {meta['model']}, imgsz {meta['imgsz']}, "
               f"{'dynamic' if meta['dynamic'] else 'static'}, opset {meta['opset']})")
    if parity:
        typer.echo(f"onnxruntime vs PyTorch, max abs difference: {parity}")


# --------------------------------------------------------------------------------- viz (augmentation issue)


@viz_app.command("augment")
def viz_augment_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="The data.yaml whose samples to draw."),
    out: Path = typer.Option(Path("augment_grid.png"), "--out", "-o", help="PNG file to write."),
    n: int = typer.Option(16, "--n", min=1, help="How many augmented samples."),
    split: str = typer.Option("train", "--split", help="Which split's images to augment."),
    imgsz: int = typer.Option(640, "--imgsz", min=32, help="Training image size (square)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same grid)."),
    recipe: str = typer.Option("ultralytics", "--recipe", help="ultralytics, torchvision or none."),
) -> None:
    """Draw a grid of augmented training samples: every instance's mask, box and class name."""
    from instseg.viz.grid import augment_grid

    typer.echo(f"wrote {augment_grid(data, out, n=n, split=split, imgsz=imgsz, seed=seed, recipe=recipe)}")


# ------------------------------------------------------------------------------------- compare (issue 11)
def fold_seeds(args: list[str]) -> list[str]:
    """``--seeds 0 1 2`` (several values after one flag, as documented) -> ``--seeds 0 --seeds 1 --seeds 2``,
    what click parses; repeating ``--seeds`` keeps working. The tokens taken after the first value are those
    that start with a digit (a seed, or a mistyped one such as ``1.5``, which then fails as a seed under
    --seeds instead of being read as a run folder)."""
    import re

    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return out + args[i:]
        if arg != "--seeds" and not arg.startswith("--seeds="):
            out.append(arg)
            i += 1
            continue
        if arg == "--seeds":
            if i + 1 >= len(args):  # no value: click says so
                return out + args[i:]
            values, i = [args[i + 1]], i + 2
        else:
            values, i = [arg.split("=", 1)[1]], i + 1
        while i < len(args) and re.match(r"[+-]?\d", args[i]) and "/" not in args[i]:
            values.append(args[i])
            i += 1
        for value in values:
            out += ["--seeds", value]
    return out


def parse_seeds(values: list[str] | None) -> list[int]:
    """The seeds of ``--seeds`` values, each one seed or several separated by commas or spaces (``0,1,2``,
    ``"0 1 2"``); [0] when none. A value that is not an integer is a usage error naming --seeds."""
    import re

    seeds = []
    for value in values or []:
        for part in [v for v in re.split(r"[,\s]+", value) if v] or [value]:
            try:
                seeds.append(int(part))
            except ValueError:
                raise typer.BadParameter(f"{part!r} is not an integer seed (--seeds 0 1 2)",
                                         param_hint="'--seeds'") from None
    return seeds or [0]


class _FoldSeeds(typer.core.TyperCommand):
    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, fold_seeds(list(args)))


@app.command("compare", cls=_FoldSeeds)
def compare_cmd(
    run_dirs: Optional[list[Path]] = typer.Argument(None, help="Existing run folders to put side by side."),
    data: Optional[Path] = typer.Option(None, "--data", help="Train mode: the dataset's data.yaml."),
    arch: Optional[list[str]] = typer.Option(None, "--arch", "-a", help="Train mode: ARCH:SIZE (repeat), e.g. -a yolo11-seg:n."),
    epochs: int = typer.Option(100, "--epochs", help="Epochs for every entry."),
    hours: Optional[float] = typer.Option(None, "--time", help="Wall-time budget per entry in hours (overrides "
                                          "--epochs: each trainer re-plans its epochs to finish its schedule in it)."),
    imgsz: int = typer.Option(640, "--imgsz", help="Image size for every entry (and for timing)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size for every entry (default: each size's)."),
    schedule: str = typer.Option("ultralytics", "--schedule", help="Schedule recipe for every entry."),
    augment: str = typer.Option("ultralytics", "--augment", help="Augmentation recipe for every entry."),
    seeds: Optional[list[str]] = typer.Option(
        None, "--seeds", metavar="INT...",
        help="Train each entry once per seed: --seeds 0 1 2 (or --seeds 0,1,2, or --seeds 0 --seeds 1 ...)."),
    device: str = typer.Option("", "--device", help="cpu or 0: training, scoring and timing device."),
    workers: int = typer.Option(4, "--workers", help="DataLoader workers per training run."),
    out: Path = typer.Option(Path("work_dirs/compare/exp"), "--out", help="Compare folder (run folders inside)."),
    samples: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples of the val images (0 = off)."),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the resamples."),
    latency_iters: int = typer.Option(20, "--latency-iters", help="Val images timed per entry, each on its own at "
                                      "batch 1; median and p90 are over these per-image times (0 = no timing)."),
    latency_warmup: int = typer.Option(3, "--latency-warmup", help="Warm-up images (untimed) before timing."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the comparison's HTML report."),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE for every entry, as `instseg "
                                                 "train` takes it (repeat), e.g. --set nbs=8 --set mosaic=0.5."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Train each entry as a Ray task on this "
                                              "cluster (e.g. 10.0.0.5:6379, or auto); --out must be shared storage."),
    gpus_per_run: Optional[float] = typer.Option(None, "--gpus-per-run", help="With --ray-address: GPUs per "
                                                 "training task (default: the devices in --device; cpu = 0)."),
    cpus_per_run: Optional[float] = typer.Option(None, "--cpus-per-run", help="With --ray-address: CPUs per "
                                                 "training task (default: --workers + 1)."),
) -> None:
    """Train several architectures under one protocol, or collect finished runs, and score them with one
    evaluator on one ground truth: `instseg compare --data data.yaml -a yolo11-seg:n -a rtmdet-ins:tiny --epochs 50`
    or `instseg compare work_dirs/a/exp work_dirs/b/exp`."""
    from instseg.compare.report import render_table
    from instseg.compare.runner import Protocol, collect_entries, compare, train_entries

    seed_list = parse_seeds(seeds)
    if run_dirs and seeds and (arch or data):  # `--seeds 0 x`: x was read as a run folder
        raise typer.BadParameter(f"{str(run_dirs[0])!r} is not an integer seed (--seeds 0 1 2)",
                                 param_hint="'--seeds'")
    if run_dirs and (arch or data or ray_address):
        raise typer.BadParameter("give run folders, or --data with -a entries (and --ray-address), not both",
                                 param_hint="RUN_DIRS")
    if run_dirs:
        entries = collect_entries(list(run_dirs))
        cfg = entries[0].cfg
        proto = {"mode": "collect", "imgsz": cfg.imgsz, "epochs": sorted({e.cfg.epochs for e in entries}),
                 "schedule": sorted({str(e.cfg.schedule.recipe) for e in entries}),
                 "augment": sorted({e.cfg.augment.recipe for e in entries}), "split": "val"}
    else:
        if data is None or not arch:
            raise typer.BadParameter("give --data and at least one -a ARCH:SIZE (or existing run folders)",
                                     param_hint="'--data' / '-a'")
        p = Protocol(data=data, epochs=epochs, time=hours, imgsz=imgsz, batch=batch, schedule=schedule, augment=augment,
                     device=device, seeds=seed_list, workers=workers, overrides=list(settings or []))
        entries = train_entries(list(arch), p, out, progress=typer.echo, ray_address=ray_address,
                                gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run)
        proto = {"mode": "train", "imgsz": imgsz, "epochs": epochs, "time": hours, "batch": batch, "schedule": schedule,
                 "augment": augment, "seeds": p.seeds, "entries": list(arch), "split": "val",
                 "ray_address": ray_address, "settings": list(settings or [])}
    doc = compare(entries, out, protocol=proto, device=device, samples=max(samples, 1), seed=bootstrap_seed,
                  latency_iters=latency_iters, latency_warmup=latency_warmup, progress=typer.echo)
    typer.echo(render_table(doc))
    typer.echo(f"wrote {out / 'compare.json'} and {out / 'compare.csv'}")
    if not no_report:
        try:
            from instseg.report import build_report

            typer.echo(f"report: {build_report(out)}")
        except Exception as e:  # the comparison is written; a failed page must not hide it
            typer.echo(f"the report failed ({type(e).__name__}: {e}); retry with `instseg report {out}`", err=True)
    if doc.get("failed"):
        raise typer.Exit(1)
# --------------------------------------------------------------------------------- end compare (issue 11)


# ---------------------------------------------------------------------------------------- tune (issue 14)
@app.command("tune")
def tune_cmd(
    data: Optional[Path] = typer.Option(None, "--data", help="The dataset's data.yaml (not needed with --resume)."),
    architecture: str = typer.Option("rtmdet-ins", "--architecture", "-a", help="See `instseg list-models`."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Size; default: the architecture's."),
    space: Optional[Path] = typer.Option(
        None, "--space", help="Search-space YAML (default: the shipped one, instseg/configs/tune/default.yaml)."),
    trials: int = typer.Option(32, "--trials", help="Trials in all (Optuna TPE, seeded)."),
    epochs: int = typer.Option(30, "--epochs", help="Epochs per trial (ASHA's max budget)."),
    imgsz: Optional[int] = typer.Option(None, "--imgsz", help="Training size of every trial."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size of every trial."),
    metric: str = typer.Option("segm_mAP", "--metric", help="segm_mAP, segm_mAP50, bbox_mAP, ..., train_loss."),
    mode: Optional[str] = typer.Option(None, "--mode", help="max or min (default: the metric's direction)."),
    seed: int = typer.Option(0, "--seed", help="Sampler seed (and every trial's training seed)."),
    grace_period: int = typer.Option(1, "--grace-period", help="ASHA: epochs before a trial can be stopped."),
    reduction_factor: int = typer.Option(2, "--reduction-factor", help="ASHA: 1/N trials go on per rung."),
    cpus_per_trial: float = typer.Option(1, "--cpus-per-trial", help="CPUs Ray reserves per trial."),
    gpus_per_trial: Optional[float] = typer.Option(None, "--gpus-per-trial", help="GPUs per trial (default 1 if any)."),
    max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", help="At most N trials at once."),
    address: Optional[str] = typer.Option(None, "--address", help="Join this Ray cluster (ray://head:10001, auto)."),
    root: Path = typer.Option(Path("work_dirs/tune"), "--project", help="Experiments root."),
    name: str = typer.Option("exp", "--name", help="Experiment folder name under --project."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted experiment --name."),
    workers: int = typer.Option(2, "--workers", help="DataLoader workers per trial (CUDA only)."),
    overrides: Optional[list[str]] = typer.Argument(
        None, metavar="[KEY=VALUE]...", help="Fixed settings of every trial (as `instseg train KEY=VALUE`)."),
) -> None:
    """Search hyperparameters on Ray Tune (Optuna TPE + ASHA): `instseg tune --data data.yaml -a rtmdet-ins
    -m tiny --trials 32 --epochs 30` (the shipped search space; --space your.yaml for another) ->
    work_dirs/tune/exp/{trials.csv, best.yaml}; retrain the best with best.yaml."""
    from instseg.config import TrainConfig, apply_overrides
    from instseg.tune.runner import TuneOptions, run_search

    if data is None and not resume:
        raise typer.BadParameter("give --data path/to/data.yaml (or --resume --name EXP)", param_hint="'--data'")
    base = TrainConfig(data=data, architecture=architecture, model=model, epochs=epochs, imgsz=imgsz, batch=batch,
                       seed=seed, workers=workers, loggers=[])
    base = apply_overrides(base, list(overrides or []))
    out = run_search(TuneOptions(base=base, space=space, trials=trials, metric=metric, mode=mode, seed=seed,
                                 grace_period=grace_period, reduction_factor=reduction_factor,
                                 cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                                 max_concurrent=max_concurrent, address=address, root=root, name=name,
                                 resume=resume), log=typer.echo)
    from instseg.tune.results import format_table

    typer.echo(format_table(out["rows"], metric))
# ------------------------------------------------------------------------------------ end tune (issue 14)


def main() -> None:
    try:
        if _eval_fast(sys.argv[1:]):  # `instseg eval --gt --pred` without Typer's per-option validators
            return
        app()
    except InstsegError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug, not a user error: still one line, the traceback only on request
        import os

        if os.environ.get("INSTSEG_DEBUG"):
            raise
        typer.secho(f"error: internal error {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                    "(please report it; rerun with INSTSEG_DEBUG=1 for the traceback)", fg=typer.colors.RED, err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
