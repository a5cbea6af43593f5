"""``instseg doctor``: the environment (Python, torch, CUDA, optional backends) and the dataset report.

Presence and versions of packages come from ``importlib.util.find_spec`` and ``importlib.metadata``, so the
optional frameworks are never imported just to be listed. torch is imported once, for the CUDA facts only.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from instseg.data.types import Finding, Severity

# (import name, distribution name, what it is for); core first, optional extras after.
CORE_PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("torch", "torch", "core"),
    ("torchvision", "torchvision", "core: Mask R-CNN, ops"),
    ("numpy", "numpy", "core"),
    ("cv2", "opencv-python-headless", "core: images"),
    ("PIL", "pillow", "core: image headers"),
    ("pycocotools", "pycocotools", "core: masks, reference evaluator"),
    ("faster_coco_eval", "faster-coco-eval", "core: fast evaluator"),
)
OPTIONAL_PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("ultralytics", "ultralytics", "YOLO11-seg backend: pip install 'instseg[yolo]'"),
    ("mmdet", "mmdet", "MMDetection: only for the parity scripts (DEVELOPERS.md); not a backend"),
    ("detectron2", "detectron2", "detectron2-maskrcnn backend: no wheel, build from source (README, "
                                 "'Optional extras'; `make detectron2` in a checkout)"),
    ("ray", "ray", "sweeps: pip install 'instseg[tune]'"),
    ("optuna", "optuna", "sweeps: pip install 'instseg[tune]'"),
)
SEVERITY_ORDER = (Severity.FATAL, Severity.ERROR, Severity.WARNING, Severity.INFO)


@dataclass(frozen=True)
class PackageStatus:
    module: str
    installed: bool
    version: str | None
    purpose: str


def package_status(module: str, dist: str, purpose: str) -> PackageStatus:
    """Whether ``module`` can be imported (without importing it) and the version of ``dist``."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    version = None
    if found:
        for name in (dist, module):
            try:
                version = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return PackageStatus(module, found, version, purpose)


def cuda_lines() -> list[str]:
    """CUDA facts from torch (imported here, once): build, availability, devices."""
    try:
        import torch
    except ImportError as e:
        return [f"torch: cannot be imported ({e}); pip install torch"]
    lines = [f"CUDA build: {torch.version.cuda or 'none (CPU build)'}"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.1f} GiB")
    else:
        lines.append("CUDA available: no (training runs on CPU)")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        lines.append("Apple MPS available: yes")
    return lines


def environment_report() -> str:
    from instseg import __version__

    lines = [
        "Environment",
        f"  instseg {__version__}, Python {platform.python_version()} ({sys.executable})",
        f"  platform: {platform.platform()}",
    ]
    for module, dist, purpose in CORE_PACKAGES + OPTIONAL_PACKAGES:
        st = package_status(module, dist, purpose)
        state = f"{st.version or 'installed'}" if st.installed else "not installed"
        lines.append(f"  {module:<17} {state:<16} {purpose}")
    lines += [f"  {line}" for line in cuda_lines()]
    return "\n".join(lines)


def _short(f: Finding, root: Path) -> str:
    if f.file is not None:
        try:
            f = Finding(f.severity, f.code, f.message, f.file.relative_to(root), f.line, f.action)
        except ValueError:
            pass
    return str(f)


def render_report(report, limit: int | None = 5) -> str:
    """The dataset part of doctor: the resolved splits, their counts, then the findings by severity and kind
    (the first ``limit`` of each kind; ``None`` shows all)."""
    spec = report.spec
    lines = [f"Dataset {spec.yaml_path}", f"  root: {spec.root}", f"  classes: {spec.nc}"]
    header = ("split", "images", "labelled", "background", "skipped", "instances", "box-only", "cached")
    rows = [header]
    for name, s in report.splits.items():
        rows.append(
            (
                name,
                s.images,
                s.labelled,
                s.background,
                s.skipped_images,
                s.instances,
                s.box_only,
                f"{s.cache_hits}/{s.images + s.skipped_images}" if s.cache_path is not None else "-",
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines += [
        "  "
        + "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    counts = report.counts()
    lines.append("")
    lines.append("Findings: " + ", ".join(f"{counts[s]} {s.value}" for s in SEVERITY_ORDER))
    for sev in SEVERITY_ORDER:
        found = [f for f in report.findings if f.severity is sev]
        if not found:
            continue
        by_code: dict[str, list[Finding]] = defaultdict(list)
        for f in found:
            by_code[f.code].append(f)
        lines.append(f"{sev.value.upper()} ({len(found)})")
        for code, items in by_code.items():
            lines.append(f"  [{code}] x{len(items)}")
            shown = items if limit is None else items[:limit]
            lines += [f"    {_short(f, spec.root)}" for f in shown]
            if len(shown) < len(items):
                lines.append(f"    ... and {len(items) - len(shown)} more (--all shows them)")
    return "\n".join(lines)


def run_doctor(
    data: Path | None = None,
    show_all: bool = False,
    limit: int = 5,
    coco: Path | None = None,
    images: Path | None = None,
) -> tuple[str, int]:
    """The full doctor text and its exit code (1 when the dataset has a FATAL problem, else 0).

    ``data`` is a YOLO data.yaml; ``coco`` a COCO instance JSON with its ``images`` folder (default: the
    JSON's folder). With neither, only the environment is reported.
    """
    from instseg.data.checks import scan_dataset
    from instseg.data.coco_checks import scan_coco
    from instseg.data.yaml_config import load_data_yaml
    from instseg.errors import InstsegError

    parts = [environment_report()]
    code = 0
    for target, scan in (
        (data, lambda: scan_dataset(load_data_yaml(data))),
        (coco, lambda: scan_coco(coco, images)),
    ):
        if target is None:
            continue
        try:
            report = scan()
        except InstsegError as e:
            parts.append(f"Dataset {target}\nFATAL (1)\n  {e}")
            code = 1
            continue
        parts.append(render_report(report, None if show_all else limit))
        code = max(code, 1 if report.fatal else 0)
    return "\n\n".join(parts), code
