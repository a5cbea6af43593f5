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


# ------------------------------------------------------------------------------ convert (foundation: convert)


# ------------------------------------------------------------------------------------ eval (foundation: eval)


# ----------------------------------------------------------------------- train / predict (engine + backends)


# --------------------------------------------------------------------------------- viz (augmentation issue)


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
