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
    from instseg.models.listing import render_model_table

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
) -> None:
    """Build a COCO JSON from instance-id PNGs or binary per-instance PNGs."""
    from instseg.data.convert import format_findings
    from instseg.data.masks2coco import masks2coco

    path, findings = masks2coco(images, masks, out, class_map=class_map, class_name=class_name)
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
) -> None:
    """Score predictions with COCO segm and bbox AP/AR and per-class AP: `instseg eval --gt val.json --pred results.json`
    or `instseg eval --weights best.pt --data data.yaml --split val`."""
    if weights is not None:  # the form owned by the train / predict section below
        _eval_weights_cmd(weights, data, split, device, out, max_det)
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
    help_settings: bool = typer.Option(False, "--help-settings", is_eager=True, callback=_help_settings,
                                       help="List every setting (KEY=VALUE) with its default and exit."),
) -> None:
    """Train a model: `instseg train --data data.yaml -a maskrcnn -m r50-fpn-v2 --epochs 50 --imgsz 640 --batch 4`.

    Every other setting is KEY=VALUE (`mosaic=0.5 hsv_h=0.02 schedule.gamma=0.5`) or the same as a flag
    (`--mosaic 0.5`, `--cos-lr`, `--no-ema`); `--help-settings` lists them all with their defaults.
    Precedence: defaults < --config FILE < KEY=VALUE < flags. Check the result with --dry-run.
    """
    from instseg.config import TrainConfig, apply_overrides, apply_values, load_run_config
    from instseg.engine import api

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
    if cfg.resume is None and cfg.data is None:
        raise typer.BadParameter("give --data path/to/data.yaml (or --config run/config.yaml, or --resume "
                                 "path/to/last.pt)", param_hint="'--data'")
    if cfg.dry_run:
        api.dry_run(cfg)
        return
    result = api.train(cfg, resume_epochs=epochs if cfg.resume is not None else None)
    typer.echo(f"run folder: {result.run.root}  (best: {result.best}, last: {result.last})")


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
) -> None:
    """Predict images: COCO results JSON (RLE masks at original size) and overlay images under --out."""
    from instseg.contract import PredictConfig
    from instseg.engine import api

    path = api.predict(weights, source, out, PredictConfig(imgsz=imgsz, conf=conf, max_det=max_det, device=device),
                       overlays=overlays)
    typer.echo(f"wrote {path}")


def _eval_weights_cmd(weights: Path, data: Optional[Path], split: str, device: str, out: Optional[Path],
                      max_det: int = 100) -> None:
    """`instseg eval --weights best.pt --data data.yaml --split val` (called by the eval command above)."""
    if data is None:
        raise typer.BadParameter("--weights needs --data path/to/data.yaml", param_hint="'--data'")
    from instseg.contract import PredictConfig
    from instseg.engine import api

    metrics = api.evaluate_weights(weights, data, split, PredictConfig(conf=0.001, device=device, max_det=max_det))
    typer.echo(metrics.table())
    if out is not None:
        typer.echo(f"metrics written to {metrics.save(out)}")



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


def main() -> None:
    try:
        app()
    except InstsegError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
