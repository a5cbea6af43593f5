"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A crash or a kill mid-write leaves the previous file intact, never a half-written one. Every writer in
instseg (labels, COCO JSON, scan caches, config.yaml, checkpoints) goes through :func:`atomic_write`.

A full disk (``ENOSPC``, or ``EDQUOT`` for a quota) becomes :class:`DiskFullError`: one line naming the
folder, the free space there and the space the write needed; the previous file is kept.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from instseg.errors import InstsegError

DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(InstsegError):
    """A write failed because the disk (or the quota) is full; the previous version of the file is kept."""


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def disk_full_error(path: Path, needed: int, cause: OSError | None = None) -> DiskFullError:
    """The one-line message for a failed write of ``needed`` bytes (at least) to ``path``."""
    folder = Path(path).parent
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = 0
    kept = " (the previous version is kept)" if Path(path).exists() else ""
    return DiskFullError(f"{folder}: disk full while writing {Path(path).name}{kept}: it needs about "
                         f"{_mb(needed)} free, {_mb(free)} are free; free at least {_mb(max(needed - free, 0) + 2**20)} "
                         f"there (or pass another --project) and run again (training: --resume .../last.pt)")


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[IO], None], *, binary: bool = False,
                 fsync: bool = False) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path`` and move it into place.

    The file gets the permissions a plain ``open(path, "w")`` would give (mkstemp alone would make it 0600).
    A full disk raises :class:`DiskFullError` (the temporary file removed, ``path`` untouched). ``fsync``
    flushes the data to the disk before the rename (checkpoints: survives a power cut, not only a kill).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _default_mode())
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.errno not in DISK_FULL_ERRNOS:
            Path(tmp).unlink(missing_ok=True)
            raise
        written = Path(tmp).stat().st_size if Path(tmp).exists() else 0
        Path(tmp).unlink(missing_ok=True)
        previous = path.stat().st_size if path.exists() else 0
        raise disk_full_error(path, max(written, previous, 1), e) from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (utf-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data), binary=True)


def inside(root: str | Path, path: str | Path) -> Path:
    """``path`` when its folder (symlinks resolved) lies inside ``root``; InstsegError otherwise.

    The last line of defence of every converter: a name taken from a user's file (COCO ``file_name``,
    LabelMe ``imagePath``) can never place an output outside the output folder.
    """
    root_r = Path(os.path.realpath(root))
    parent = Path(os.path.realpath(Path(path).parent))
    name = Path(path).name
    if name in ("", ".", "..") or not parent.is_relative_to(root_r):
        raise InstsegError(f"{path}: refusing to write outside the output folder {root} (the name comes from "
                           "an input file; rename the image or its entry)")
    return parent / name
