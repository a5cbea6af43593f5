"""Plain-text tables of COCO metrics (what ``instseg eval`` prints)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from instseg.evaluation.metrics import SUMMARY_SPEC

if TYPE_CHECKING:
    from instseg.evaluation.metrics import Metrics

#: row label of each summary field
ROW_LABELS: dict[str, str] = {
    "AP": "AP @[.50:.95]",
    "AP50": "AP @.50",
    "AP75": "AP @.75",
    "APs": "AP small",
    "APm": "AP medium",
    "APl": "AP large",
    "AR1": "AR maxDets=1",
    "AR10": "AR maxDets=10",
    "AR100": "AR maxDets=100",
    "ARs": "AR small",
    "ARm": "AR medium",
    "ARl": "AR large",
}


def fmt(value: float, digits: int = 3) -> str:
    """A fraction as text with ``digits`` decimals; NaN (undefined: no ground truth) as "-"."""
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    """Aligned text rows: the first column left-aligned, the others right-aligned, a rule under the header."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def render_metrics(metrics: Metrics) -> str:
    """Summary table (one column per IoU type) followed by the per-class AP50-95 / AP50 table."""
    kinds = metrics.types()
    if not kinds:
        return "(no IoU type evaluated)"
    header = ["metric", *kinds]
    rows = [
        [ROW_LABELS[name], *(fmt(getattr(tm, name)) for tm in kinds.values())] for name, *_ in SUMMARY_SPEC
    ]
    lines = [
        f"COCO evaluation ({metrics.engine}): {metrics.num_images} images, "
        f"{metrics.num_predictions} predictions",
        *_grid(header, rows),
    ]
    classes = list(next(iter(kinds.values())).per_class)
    if classes:
        cls_header = ["class"]
        for k in kinds:
            cls_header += [f"{k} AP", f"{k} AP50"]
        cls_rows = []
        for name in classes:
            row = [name]
            for tm in kinds.values():
                row += [fmt(tm.per_class.get(name, math.nan)), fmt(tm.per_class_ap50.get(name, math.nan))]
            cls_rows.append(row)
        lines += [
            "",
            "per class (AP = AP @[.50:.95]; '-' = no ground truth for that class)",
            *_grid(cls_header, cls_rows),
        ]
    return "\n".join(lines)
