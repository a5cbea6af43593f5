"""Documentation of every training setting, generated from the dataclasses of :mod:`instseg.config`: the
docstring under each field and its default. ``instseg train --help`` (flag help) and ``--help-settings``
read it from here, so no default or description is written twice."""

from __future__ import annotations

import functools
from dataclasses import fields
from pathlib import Path
from typing import Any

from instseg import config as C
from instseg.config import field_default, resolve_key


@functools.lru_cache(maxsize=None)
def field_docs() -> dict[tuple[str | None, str], str]:
    """``(section, field) -> docstring`` read from this module's source (the string under each field)."""
    import ast

    tree = ast.parse(Path(C.__file__).read_text(encoding="utf-8"))
    names = {"TrainConfig": None, "AugmentConfig": "augment", "ScheduleConfig": "schedule"}
    docs: dict[tuple[str | None, str], str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in names:
            body = node.body
            for a, b in zip(body, body[1:]):
                if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                        and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                    docs[(names[node.name], a.target.id)] = " ".join(b.value.value.split())
    return docs


def field_help(key: str, extra: str = "") -> str:
    """The help text of one setting: its docstring (+ ``extra``) and its dataclass default (the one source
    of both)."""
    section, name = resolve_key(key)
    default = field_default(section, name)
    return f"{field_docs().get((section, name), '')}{' ' + extra if extra else ''} (default: {show_default(default)})"


def show_default(value: Any) -> str:
    """A default as the help prints it: ``unset``, ``''``, ``100``, ``exp``."""
    return "unset" if value is None else ("''" if value == "" else str(value))


def settings_help(flags: dict[str, str] | None = None) -> str:
    """Every setting with its type, default and docstring, by section (``instseg train --help-settings``).
    ``flags``: setting -> the flag that also sets it."""
    flags = flags or {}
    docs = field_docs()
    lines = ["Every setting of `instseg train`, as KEY=VALUE (or --key VALUE; booleans also --key / --no-key).",
             "Order: dataclass defaults < --config FILE < KEY=VALUE < flags. Values are YAML scalars;",
             "`section.key` where a name is in two sections (augment.recipe, schedule.recipe).", ""]
    titles = {None: "run", "augment": "augment (AugmentConfig)", "schedule": "schedule (ScheduleConfig)"}
    for section, cls in C._sections().items():
        lines.append(f"{titles[section]}:")
        for f in fields(cls):
            if section is None and f.name in ("augment", "schedule"):
                continue
            key = f"{section}.{f.name}" if section else f.name
            default = field_default(section, f.name)
            flag = f"  ({flags[key]})" if key in flags else ""
            lines.append(f"  {key} = {show_default(default)}   [{f.type}]{flag}")
            lines.append(f"      {docs.get((section, f.name), '')}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["field_docs", "field_help", "show_default", "settings_help"]
