"""The search-space file of ``instseg tune``: instseg setting names -> distributions, checked before any trial.

A space file is YAML mapping the names of ``instseg train KEY=VALUE`` (``lr0``, ``mosaic``,
``augment.recipe``, ...) to one distribution each::

    lr0: {loguniform: [0.0005, 0.02]}
    mosaic: {uniform: [0.0, 1.0]}
    optimizer: {choice: [SGD, AdamW]}
    close_mosaic: {int: [0, 5]}

Validation (no Ray needed): every key is a setting of the config schema (``instseg.config``), every
distribution is one of the four kinds with well-formed bounds, and both bounds (every choice) build a valid
``TrainConfig`` on top of the base config, so a range the schema refuses fails here, not in trial 17.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from instseg.config import ConfigError, TrainConfig, _override_targets, apply_overrides

KINDS = ("uniform", "loguniform", "choice", "int")

# set by the search itself, not by a trial's sample
RESERVED = ("data", "architecture", "model", "epochs", "project", "name", "exist_ok", "resume", "dry_run",
            "quiet", "device")


class SpaceError(ConfigError):
    """A search-space file is invalid; the message names the file, the line, what is wrong and the fix."""


@dataclass(frozen=True)
class Dist:
    """One dimension: ``kind`` in KINDS; ``args`` = [lo, hi] (uniform, loguniform, int) or the choices."""

    key: str
    kind: str
    args: tuple

    def override(self, value: Any) -> str:
        """``key=value`` for ``apply_overrides`` (JSON is YAML: 0.01, "SGD", null, true)."""
        return f"{self.key}={json.dumps(_plain(value))}"


def _plain(value: Any) -> Any:
    """numpy scalars (what samplers return) as Python scalars."""
    return value.item() if hasattr(value, "item") else value


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of every top-level key of a YAML mapping."""
    node = yaml.compose(text)
    if node is None or not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value}


def parse_space(text: str, source: str = "<space>") -> list[Dist]:
    """The distributions of a space file's text (structure only; see :func:`validate_space`)."""
    try:
        data = yaml.safe_load(text)
        lines = _key_lines(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SpaceError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or e}); write "
                         "'setting: {uniform: [lo, hi]}' lines") from e
    if not isinstance(data, dict) or not data:
        raise SpaceError(f"{source}: a search space is a mapping of settings to distributions, e.g. "
                         "'lr0: {loguniform: [0.0005, 0.02]}'")
    targets = _override_targets()
    valid = sorted(k for k in targets if "." not in k and k not in RESERVED)
    dists = []
    for key, spec in data.items():
        where = f"{source}:{lines.get(key, 1)}"
        key = str(key)
        if key in RESERVED:
            raise SpaceError(f"{where}: {key!r} is set by the search itself (--data, -a, -m, --epochs, ...); "
                             "remove it from the space")
        if key not in targets:
            raise SpaceError(f"{where}: unknown setting {key!r}; valid settings: {', '.join(valid)} "
                             "(augment.<name>/schedule.<name> where a name is in both)")
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise SpaceError(f"{where}: {key}: {spec!r} is not one distribution; write one of "
                             f"{{uniform: [lo, hi]}}, {{loguniform: [lo, hi]}}, {{choice: [a, b]}}, {{int: [lo, hi]}}")
        kind, args = next(iter(spec.items()))
        if not isinstance(args, list) or not args:
            raise SpaceError(f"{where}: {key}: {kind} takes a list ({kind}: [...])")
        if kind != "choice":
            num = int if kind == "int" else (int, float)
            if len(args) != 2 or not all(isinstance(a, num) and not isinstance(a, bool) for a in args):
                raise SpaceError(f"{where}: {key}: {kind} takes [lo, hi] as {'integers' if kind == 'int' else 'numbers'}, "
                                 f"got {args}")
            lo, hi = args
            if not lo < hi:
                raise SpaceError(f"{where}: {key}: {kind} [{lo}, {hi}] needs lo < hi")
            if kind == "loguniform" and lo <= 0:
                raise SpaceError(f"{where}: {key}: loguniform needs lo > 0, got {lo}; use uniform for ranges from 0")
        dists.append(Dist(key, kind, tuple(args)))
    return dists


def validate_space(dists: list[Dist], base: TrainConfig, source: str = "<space>",
                   lines: dict[str, int] | None = None) -> None:
    """Build ``base`` + each bound (each choice) through the config schema: a value it refuses is an error
    naming the setting, the bound and the schema's own message."""
    lines = lines or {}
    for d in dists:
        values = d.args if d.kind == "choice" else (d.args[0], d.args[1])
        for v in values:
            try:
                apply_overrides(base, [d.override(v)])
            except ConfigError as e:
                raise SpaceError(f"{source}:{lines.get(d.key, 1)}: {d.key}: {d.kind} {list(d.args)} reaches "
                                 f"{v!r}, which the config refuses ({e}); narrow the range") from e


def default_space() -> Path:
    """The shipped search space: ``tune/default.yaml`` of the installed package's configs (package data),
    wherever instseg is run from."""
    from instseg.presets import configs_dir

    return configs_dir() / "tune" / "default.yaml"


def load_space(path: Path | None, base: TrainConfig) -> list[Dist]:
    """Parse and validate the space file ``path`` (None: :func:`default_space`) against ``base``."""
    path = default_space() if path is None else Path(path)
    if not path.is_file():
        raise SpaceError(f"{path}: no such search-space file; pass --space PATH, or leave --space out for the "
                         f"shipped one ({default_space()})")
    text = path.read_text()
    dists = parse_space(text, str(path))
    validate_space(dists, base, str(path), _key_lines(text))
    return dists


def to_ray(dists: list[Dist]) -> dict:
    """Ray Tune's param_space (Optuna's TPE samples it through OptunaSearch)."""
    from ray import tune

    make = {"uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
            "int": lambda a: tune.randint(a[0], a[1] + 1), "choice": lambda a: tune.choice(list(a))}
    return {d.key: make[d.kind](d.args) for d in dists}


def apply_sample(base: TrainConfig, dists: list[Dist], sample: dict) -> TrainConfig:
    """``base`` with one trial's sampled values (``{key: value}``)."""
    by_key = {d.key: d for d in dists}
    return apply_overrides(base, [by_key[k].override(v) for k, v in sample.items() if k in by_key])


__all__ = ["Dist", "SpaceError", "KINDS", "RESERVED", "parse_space", "validate_space", "default_space", "load_space", "to_ray",
           "apply_sample"]
