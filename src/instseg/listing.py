"""``instseg list-models``: the registry as a table, with each backend's availability."""

from __future__ import annotations

from instseg.backends import backend_status
from instseg.models.registry import ARCHITECTURES, get_architecture


def render_model_table(only: str | None = None) -> str:
    archs = [get_architecture(only)] if only else [ARCHITECTURES[k] for k in ARCHITECTURES]
    rows = [("architecture", "size", "params (M)", "batch", "imgsz", "backend", "status", "layout")]
    notes: list[str] = []
    cache: dict[str, str | None] = {}
    for arch in archs:
        if arch.backend not in cache:
            cache[arch.backend] = backend_status(arch.backend)
        why = cache[arch.backend]
        if arch.status == "planned":
            status = "planned"
        elif why is None:
            status = "ready"
        else:
            status = "backend missing"
            note = f"{arch.name}: {why}"
            if note not in notes:
                notes.append(note)
        for size in arch.sizes.values():
            params = f"{size.params_m:.1f}" if size.params_m is not None else "-"
            rows.append((arch.name, size.name, params, str(size.default_batch), str(size.default_imgsz),
                         arch.backend, status, size.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)
