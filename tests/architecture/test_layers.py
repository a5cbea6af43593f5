"""The layer order written in ARCHITECTURE.md, checked on the code: every ``import instseg.X`` (module level
or inside a function, ``if TYPE_CHECKING`` blocks excepted) goes to a layer at or below the importer's, and
every package imports alone in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "instseg"

# ARCHITECTURE.md, "Layers": lowest first. A unit may import its own layer's units and any lower layer.
LAYERS: list[set[str]] = [
    {"__init__", "errors", "io", "rundir", "sniff", "structures"},  # __init__: the version, nothing else
    {"presets", "config", "config_help", "contract"},
    {"data"},
    {"augment"},
    {"models"},
    {"evaluation"},
    {"engine"},
    {"backends"},
    {"api", "listing", "doctor", "viz"},
    {"report", "export", "compare", "tune"},
    {"cli", "__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1] if len(parts) > 2 else parts
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("instseg")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("instseg"):
            if node.module == "instseg":
                out += [(node.lineno, f"instseg.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
    return out


def edges() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for line, target in _imports(path):
            found.append((_module_name(path), line, target))
    return found


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert units - set(RANK) == set(), "add the new module/package to LAYERS here and in ARCHITECTURE.md"


def test_lower_layers_never_import_higher_ones():
    bad = []
    for source, line, target in edges():
        src_unit, dst_unit = _unit(source), _unit(target)
        if src_unit == dst_unit or dst_unit not in RANK:
            continue
        if RANK[dst_unit] > RANK[src_unit]:
            bad.append(f"{source}:{line} imports {target} ({src_unit} is below {dst_unit})")
    assert not bad, "\n".join(bad)


def test_the_graph_walk_sees_the_real_imports():
    # a check that can fail: the walker finds known edges, lazy (function-level) ones included
    found = {(s, t) for s, _, t in edges()}
    assert ("instseg.api", "instseg.backends") in found
    assert ("instseg.backends.native", "instseg.backends.engine_trained") in found
    assert any(s.startswith("instseg.backends") and t.startswith("instseg.engine") for s, t in found)


@pytest.mark.parametrize("package", sorted(
    u for u in RANK if u not in ("__init__", "__main__") and ((SRC / u).is_dir() or (SRC / f"{u}.py").exists())))
def test_each_package_imports_alone(package):
    code = f"import instseg.{package}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
