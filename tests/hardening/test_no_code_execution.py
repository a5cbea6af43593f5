"""No file a user hands instseg can run code: every ``torch.load`` passes ``weights_only=True``; no
``pickle.load(s)``, ``yaml.load``/``unsafe_load``/``full_load``, ``eval``, ``exec``, ``marshal.load(s)`` or
``numpy.load(allow_pickle=True)`` anywhere in ``src/``. The test reads the source as an AST, so a comment or a
string mentioning these names is not a hit, and an alias (``from pickle import load``) is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "instseg"

FORBIDDEN_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("cPickle", "load"), ("dill", "load"),
    ("cloudpickle", "load"), ("cloudpickle", "loads"), ("marshal", "load"), ("marshal", "loads"),
    ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"), ("yaml", "load_all"),
    ("yaml", "unsafe_load_all"), ("yaml", "full_load_all"), ("shelve", "open"), ("joblib", "load"),
}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def offenders(tree: ast.AST, filename: str) -> list[str]:
    """``file:line: what`` for every unsafe call in ``tree``."""
    aliases: dict[str, tuple[str, str]] = {}  # local name -> (module, attr) for `from m import a as b`
    modules: dict[str, str] = {}  # local name -> module for `import m as n`
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = (node.module.split(".")[0], a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                modules[a.asname or a.name.split(".")[0]] = a.name.split(".")[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        kw = {k.arg: k.value for k in node.keywords}
        where = f"{filename}:{node.lineno}"
        if isinstance(f, ast.Name):
            if f.id in FORBIDDEN_BUILTINS and f.id not in aliases:
                found.append(f"{where}: {f.id}()")
            target = aliases.get(f.id)
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            target = (modules.get(f.value.id, f.value.id), f.attr)
        else:
            target = None
        if target is None:
            continue
        if target in FORBIDDEN_CALLS:
            found.append(f"{where}: {target[0]}.{target[1]}()")
        if target == ("torch", "load") and not _is_true(kw.get("weights_only")):
            found.append(f"{where}: torch.load without weights_only=True")
        if target in {("numpy", "load"), ("np", "load")} and "allow_pickle" in kw and not (
                isinstance(kw["allow_pickle"], ast.Constant) and kw["allow_pickle"].value is False):
            found.append(f"{where}: numpy.load(allow_pickle=...)")
    return found


def _scan(code: str) -> list[str]:
    return offenders(ast.parse(code), "x.py")


@pytest.mark.parametrize("code, hits", [
    ("import torch\ntorch.load(p)", 1),
    ("import torch\ntorch.load(p, weights_only=False)", 1),
    ("import torch\ntorch.load(p, map_location='cpu', weights_only=True)", 0),
    ("from torch import load\nload(p)", 1),
    ("import pickle\npickle.loads(b)", 1),
    ("from pickle import load as L\nL(f)", 1),
    ("import yaml\nyaml.load(s, Loader=yaml.Loader)", 1),
    ("import yaml\nyaml.safe_load(s)", 0),
    ("eval('1+1')", 1),
    ("exec(code)", 1),
    ("model.eval()", 0),  # nn.Module.eval is a method, not the builtin
    ("import numpy as np\nnp.load(p, allow_pickle=True)", 1),
    ("import numpy as np\nnp.load(p)", 0),
    ("# torch.load(p)\ns = 'pickle.load(f)'", 0),
])
def test_the_scanner_finds_what_it_should(code, hits):
    assert len(_scan(code)) == hits, _scan(code)


def test_src_has_no_unsafe_deserialization_or_eval():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the scan really covers the package
    found = []
    for path in files:
        found += offenders(ast.parse(path.read_text(encoding="utf-8")), str(path.relative_to(SRC.parent)))
    assert not found, "unsafe calls in src/:\n" + "\n".join(found)


def test_a_pickle_bomb_checkpoint_does_not_run(tmp_path):
    """A .pt whose pickle would call os.system is refused by load_checkpoint (WeightsError), and nothing ran."""
    import pickle
    import zipfile

    from instseg.engine.checkpoint import load_checkpoint
    from instseg.errors import WeightsError

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pt"
    # torch's zip layout: archive/data.pkl holds the pickle
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"model": Evil()}, protocol=2))
        z.writestr("archive/version", "3\n")
    with pytest.raises(WeightsError, match="evil.pt"):
        load_checkpoint(path)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(WeightsError, match="raw.pt"):
        load_checkpoint(raw)
    assert not marker.exists()
