"""What a weights file is, read from its bytes alone: nothing is unpickled, no framework is imported.

``torch.save`` writes a zip archive whose ``<name>/data.pkl`` holds the object structure (dict keys,
strings, class names) while tensors live in separate entries; older files are a sequence of pickles. The
pickle *opcodes* are walked with :mod:`pickletools` (which only parses), so a backend's ``owns()`` can look at
the strings and class names a file contains without ever executing it.
"""

from __future__ import annotations

import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_PICKLE_BYTES = 64 << 20  # a data.pkl larger than this is not a checkpoint structure
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
               "STRING"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}


@dataclass
class PickleSummary:
    """The strings of a pickle in stream order (memo references resolved) and the globals it names."""

    strings: list[str] = field(default_factory=list)
    globals: set[str] = field(default_factory=set)

    def value_after(self, key: str) -> str | None:
        """The string right after ``key`` (a dict's string value), or None."""
        try:
            i = self.strings.index(key)
        except ValueError:
            return None
        return self.strings[i + 1] if i + 1 < len(self.strings) else None

    def has_prefix(self, prefix: str) -> bool:
        return any(s.startswith(prefix) for s in self.strings)


def _walk(data: bytes) -> tuple[PickleSummary, int]:
    """Summary of the first pickle in ``data`` and the offset where it ended."""
    summary = PickleSummary()
    memo: dict[int, str] = {}
    last: str | None = None
    end = len(data)
    pending_global: list[str] = []
    for op, arg, pos in pickletools.genops(data):
        name = op.name
        if name in _STRING_OPS:
            last = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
            summary.strings.append(last)
            pending_global = (pending_global + [last])[-2:]
        elif name == "MEMOIZE":
            memo[len(memo)] = last  # type: ignore[assignment]
        elif name in _PUT_OPS:
            memo[int(arg)] = last  # type: ignore[assignment]
        elif name in _GET_OPS:
            value = memo.get(int(arg))
            if isinstance(value, str):
                summary.strings.append(value)
                pending_global = (pending_global + [value])[-2:]
            last = value
        elif name in ("GLOBAL", "INST"):
            summary.globals.add(str(arg).replace(" ", "."))
            last = None
        elif name == "STACK_GLOBAL":
            if len(pending_global) == 2:
                summary.globals.add(".".join(pending_global))
            last = None
        elif name == "STOP":
            end = pos + 1
            break
        else:
            last = None
    return summary, end


def pickle_summary(path: str | Path) -> PickleSummary | None:
    """The structure pickle of a torch file (zip or legacy format), or None when ``path`` is neither."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                if name is None or z.getinfo(name).file_size > MAX_PICKLE_BYTES:
                    return None
                return _walk(z.read(name))[0]
        with open(path, "rb") as f:
            head = f.read(MAX_PICKLE_BYTES)
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    if not head.startswith(b"\x80"):
        return None
    try:  # legacy torch format: magic number, protocol, sys info, then the object
        merged = PickleSummary()
        offset = 0
        for _ in range(4):
            summary, used = _walk(head[offset:])
            merged.strings.extend(summary.strings)
            merged.globals |= summary.globals
            offset += used
        return merged
    except Exception:  # not a pickle stream after all (or truncated): not ours to read
        return None


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


__all__ = ["PickleSummary", "pickle_summary", "is_onnx"]
