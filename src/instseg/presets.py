"""The presets under ``configs/`` (YAML files, read by the registry and the schedule) and the errors about
names and settings. The lowest layer beside ``errors``: no instseg module below it but ``errors``."""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

import yaml

from instseg.errors import InstsegError


class ConfigError(InstsegError, ValueError):
    """A configuration value is invalid; the message names the option and the valid range."""


class UnknownChoiceError(ConfigError, KeyError):
    """A name (architecture, size, recipe, setting) that is not one of the valid choices; the message lists
    them and the closest one. Also a KeyError, for callers that looked names up in plain dicts."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(name: str, choices) -> str:
    """``" (did you mean 'solov2'?)"`` for the closest of ``choices`` (difflib), or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_choice(what: str, name: str, choices, where: str = "") -> UnknownChoiceError:
    """The error for ``name`` not in ``choices``: names them all, and the closest."""
    valid = ", ".join(str(c) for c in choices)
    return UnknownChoiceError(f"{where}unknown {what} {name!r}{did_you_mean(name, choices)}; valid: {valid}")


def configs_dir() -> Path:
    """The presets folder. ``configs/`` at the top of the repository is the only copy; the package reaches
    it as ``instseg/configs`` (a symlink in a source checkout, package data in a wheel)."""
    return (Path(__file__).resolve().parent / "configs").resolve()


def read_yaml(path: Path, what: str = "YAML file") -> dict:
    """A YAML mapping from ``path``; a missing, unreadable, malformed or non-mapping file is a ConfigError
    that names the file (and line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: {what} not found; check the path") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read this {what} ({e.__class__.__name__}: {e})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}{line}: not valid YAML ({problem}); fix the file") from e
    if data is None:
        raise ConfigError(f"{path}: the {what} is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} must be a mapping of keys to values, not a {type(data).__name__}")
    return data


@functools.lru_cache(maxsize=None)
def recipe_files() -> dict[str, Path]:
    """``name -> configs/recipes/<name>.yaml`` for every training recipe."""
    return {p.stem: p for p in sorted((configs_dir() / "recipes").glob("*.yaml"))}


def recipe_names() -> tuple[str, ...]:
    """The valid ``schedule.recipe`` values: every recipe file, and ``upstream`` (the architecture's own)."""
    return (*recipe_files(), "upstream")


__all__ = ["ConfigError", "UnknownChoiceError", "did_you_mean", "unknown_choice", "configs_dir", "read_yaml",
           "recipe_files", "recipe_names"]
